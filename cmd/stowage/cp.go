package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/stowage/stowage/driver"
)

const cpSummary = `Copy a file, or with -r a folder, between local files, standard input or
output (-) and stores, also from one store to another of another backend,
streaming through the destination's resumable writer (its chunking and
parallel parts) with a progress bar on a terminal.

An operand is a store path when written NAME:/path (rclone's remote:path
convention): NAME is a store named with --store NAME=FILE or under stores: in
the --config file; an empty NAME (":/path") is the store that --config,
--driver and --param configure, as for the other commands. Anything else is a
local path. A config file may name several stores:

  stores:
    src: {driver: filesystem, parameters: {rootdirectory: /srv/blobs}}
    dst: {storage: {s3: {bucket: b, region: eu-west-1}}}

Interrupted (Ctrl-C), cp closes the destination's upload, so what it
accepted is kept; run the same cp with --resume to go on from there (for a
local destination, from the file's size). --resume trusts that the upload at
the destination is of the same source. --dry-run lists what would be copied.`

// storeRef is one operand of cp.
type storeRef struct {
	store string // "" for a local path
	path  string // the store path, or the local path ("-" for stdio)
	d     driver.Driver
}

func (r storeRef) local() bool { return r.d == nil }

func (r storeRef) String() string {
	if r.local() {
		return r.path
	}
	return r.store + ":" + r.path
}

var storeOperand = regexp.MustCompile(`^([A-Za-z0-9_-]*):(/.*)$`)

// storeFlags are the --store NAME=FILE flags.
type storeFlags map[string]string

func (s storeFlags) String() string { return "" }

func (s storeFlags) Set(v string) error {
	name, file, ok := strings.Cut(v, "=")
	if !ok || name == "" || file == "" || !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(name) {
		return fmt.Errorf("want NAME=FILE with NAME of letters, digits, _ and -, got %q", v)
	}
	s[name] = file
	return nil
}

// namedStores reads the stores: section of a config file, if any.
func namedStores(file string) (map[string]storeConfig, error) {
	if file == "" {
		return nil, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, usageErr(fmt.Errorf("config: %w", err))
	}
	var top struct {
		Stores map[string]yaml.Node `yaml:"stores"`
	}
	if err := yaml.Unmarshal(data, &top); err != nil {
		return nil, usageErr(fmt.Errorf("config %s: not valid YAML: %s", file, yamlErrorLine(err)))
	}
	out := map[string]storeConfig{}
	for name, node := range top.Stores {
		b, err := yaml.Marshal(&node)
		if err != nil {
			return nil, usageErr(fmt.Errorf("config %s: stores: %s: %v", file, name, err))
		}
		cfg, err := parseConfig(b)
		if err != nil {
			return nil, usageErr(fmt.Errorf("config %s: stores: %s: %w", file, name, err))
		}
		out[name] = cfg
	}
	return out, nil
}

func runCp(ctx context.Context, a *app, args []string) error {
	cmd := findCommand("cp")
	fs := a.newFlags("cp", cmd.usage, cpSummary)
	var cf configFlags
	cf.register(fs)
	stores := storeFlags{}
	fs.Var(stores, "store", "name a store: `NAME=FILE` (a config file of one store; repeatable)")
	var recursive, resume, dryRun bool
	fs.BoolVar(&recursive, "r", false, "copy a folder with everything below it")
	fs.BoolVar(&resume, "resume", false, "go on from what the destination accepted before an interruption")
	fs.BoolVar(&dryRun, "dry-run", false, "list what would be copied, copy nothing")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 2, 2, cmd.usage); err != nil {
		return err
	}
	file := cf.file
	if file == "" {
		file = lookupEnv(a.environ, EnvConfig)
	}
	named, err := namedStores(file)
	if err != nil {
		return err
	}
	opened := map[string]driver.Driver{}
	resolve := func(op string) (storeRef, error) {
		m := storeOperand.FindStringSubmatch(op)
		if m == nil {
			return storeRef{path: op}, nil
		}
		name, p := m[1], m[2]
		ref := storeRef{store: name, path: p}
		if !driver.ValidFolder(p) {
			return ref, usageErr(fmt.Errorf("%q is not a store path (want NAME:/a/b, components of A-Z a-z 0-9 . _ -)", op))
		}
		if d, ok := opened[name]; ok {
			ref.d = d
			return ref, nil
		}
		var cfg storeConfig
		switch {
		case name == "":
			var ok bool
			cfg, ok, err = cf.load(a.environ)
			if err != nil {
				return ref, err
			}
			if !ok {
				return ref, usageErr(fmt.Errorf("%s names the default store, but none is configured: use --config FILE, $%s or --driver NAME --param key=value", op, EnvConfig))
			}
		case stores[name] != "":
			data, err := os.ReadFile(stores[name])
			if err != nil {
				return ref, usageErr(fmt.Errorf("--store %s: %w", name, err))
			}
			if cfg, err = parseConfig(data); err != nil {
				return ref, usageErr(fmt.Errorf("--store %s: %s: %w", name, stores[name], err))
			}
		case named[name].Driver != "":
			cfg = named[name]
		default:
			known := make([]string, 0, len(stores)+len(named))
			for n := range stores {
				known = append(known, n)
			}
			for n := range named {
				known = append(known, n)
			}
			sort.Strings(known)
			return ref, usageErr(fmt.Errorf("%s: no store named %q (named: %s; use --store %s=FILE or stores: in the config file)", op, name, strings.Join(known, ", "), name))
		}
		d, err := cfg.open(ctx)
		if err != nil {
			return ref, err
		}
		opened[name] = d
		ref.d = d
		return ref, nil
	}
	src, err := resolve(pos[0])
	if err != nil {
		return err
	}
	dst, err := resolve(pos[1])
	if err != nil {
		return err
	}
	if src.local() && dst.local() {
		return usageErr(errors.New("both operands are local paths: one of them must be a store path NAME:/path (:/path for the configured store)"))
	}
	c := &copier{a: a, ctx: ctx, resume: resume, dryRun: dryRun}
	if recursive {
		return c.tree(src, dst)
	}
	return c.one(src, dst)
}

// copier copies files for one cp.
type copier struct {
	a              *app
	ctx            context.Context
	resume, dryRun bool
	files, bytes   int64
}

// pair is one file to copy.
type pair struct {
	src, dst storeRef
	size     int64
}

// tree copies the folder src to dst, file by file, in walk order.
func (c *copier) tree(src, dst storeRef) error {
	if src.path == "-" || dst.path == "-" {
		return usageErr(errors.New("-r copies folders: - (standard input or output) is a single stream"))
	}
	var pairs []pair
	join := func(base storeRef, rel string) storeRef {
		r := base
		if base.local() {
			r.path = filepath.Join(base.path, filepath.FromSlash(rel))
		} else {
			r.path = path.Join(base.path, rel)
		}
		return r
	}
	if src.local() {
		err := filepath.WalkDir(src.path, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !de.Type().IsRegular() {
				return nil
			}
			rel, _ := filepath.Rel(src.path, p)
			rel = filepath.ToSlash(rel)
			target := join(dst, rel)
			if !dst.local() && !driver.ValidPath(target.path) {
				return usageErr(fmt.Errorf("%s can not be a store path (%s: components of A-Z a-z 0-9 . _ -)", p, target.path))
			}
			fi, err := de.Info()
			if err != nil {
				return err
			}
			pairs = append(pairs, pair{src: join(src, rel), dst: target, size: fi.Size()})
			return nil
		})
		if err != nil {
			return err
		}
	} else {
		prefix := strings.TrimSuffix(src.path, "/") + "/"
		err := src.d.Walk(c.ctx, src.path, func(fi driver.FileInfo) error {
			if fi.IsDir() {
				return nil
			}
			rel := strings.TrimPrefix(fi.Path(), prefix)
			if src.path == "/" {
				rel = strings.TrimPrefix(fi.Path(), "/")
			}
			pairs = append(pairs, pair{src: storeRef{store: src.store, path: fi.Path(), d: src.d}, dst: join(dst, rel), size: fi.Size()})
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, p := range pairs {
		if err := c.copy(p.src, p.dst, p.size); err != nil {
			return fmt.Errorf("%s to %s: %w", p.src, p.dst, err)
		}
	}
	if c.dryRun {
		fmt.Fprintf(c.a.stdout, "dry run: %d files, %d bytes would be copied\n", c.files, c.bytes)
	} else {
		fmt.Fprintf(c.a.stderr, "copied %d files, %d bytes\n", c.files, c.bytes)
	}
	return nil
}

// one copies one file (a store path that is a folder needs -r).
func (c *copier) one(src, dst storeRef) error {
	size := int64(-1)
	switch {
	case src.path == "-":
	case src.local():
		fi, err := os.Stat(src.path)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return usageErr(fmt.Errorf("%s is a folder: use cp -r", src.path))
		}
		size = fi.Size()
	default:
		fi, err := src.d.Stat(c.ctx, src.path)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return usageErr(fmt.Errorf("%s is a folder: use cp -r", src))
		}
		size = fi.Size()
	}
	if !dst.local() && !driver.ValidPath(dst.path) {
		return usageErr(fmt.Errorf("%s is not a store file path", dst))
	}
	if err := c.copy(src, dst, size); err != nil {
		return err
	}
	if c.dryRun {
		fmt.Fprintf(c.a.stdout, "dry run: %d files, %d bytes would be copied\n", c.files, c.bytes)
	}
	return nil
}

// copy copies one file of size bytes (-1: unknown, standard input).
func (c *copier) copy(src, dst storeRef, size int64) error {
	c.files++
	if size > 0 {
		c.bytes += size
	}
	if c.dryRun {
		fmt.Fprintf(c.a.stdout, "would copy %s to %s (%d bytes)\n", src, dst, size)
		return nil
	}
	// Where the destination stands: 0, or with --resume what it accepted.
	var (
		w      driver.FileWriter
		out    io.Writer
		offset int64
		local  *os.File
	)
	// The writer outlives an interrupt (ctx): it must still Close, so that
	// what it accepted is kept for --resume.
	wctx := context.WithoutCancel(c.ctx)
	switch {
	case dst.path == "-":
		out = c.a.stdout
		if c.resume {
			return usageErr(errors.New("--resume needs a destination that keeps what it accepted, not standard output"))
		}
	case dst.local():
		flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if c.resume {
			flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		}
		if err := os.MkdirAll(filepath.Dir(dst.path), 0o777); err != nil {
			return err
		}
		f, err := os.OpenFile(dst.path, flags, 0o666)
		if err != nil {
			return err
		}
		defer f.Close()
		if c.resume {
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			offset = fi.Size()
		}
		local, out = f, f
	default:
		var err error
		if c.resume {
			w, err = dst.d.Writer(wctx, dst.path, true)
			if errors.Is(err, driver.ErrNotFound) {
				w, err = dst.d.Writer(wctx, dst.path, false)
			}
		} else {
			w, err = dst.d.Writer(wctx, dst.path, false)
		}
		if err != nil {
			return err
		}
		offset = w.Size()
		out = w
	}
	if size >= 0 && offset > size {
		if w != nil {
			w.Close()
		}
		return fmt.Errorf("the destination already holds %d bytes, more than the source's %d: not an interrupted copy of it (copy again without --resume)", offset, size)
	}
	in, err := c.open(src, offset)
	if err != nil {
		if w != nil {
			w.Close()
		}
		return err
	}
	defer in.Close()
	total := size - offset
	bar := newProgressBar(c.a.stderr, total, c.a.progress)
	bar.setLabel(src.String())
	n, cerr := copyCtx(c.ctx, out, in, bar)
	bar.finish()
	switch {
	case w != nil && cerr != nil:
		// Keep what was accepted: Close (not Cancel), so --resume can go on.
		if err := w.Close(); err != nil {
			return fmt.Errorf("%w (and closing the upload failed: %v)", cerr, err)
		}
		return fmt.Errorf("%w: %d bytes of %s accepted; run the same cp with --resume to go on", cerr, offset+n, dst)
	case w != nil:
		if err := w.Commit(wctx); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	case local != nil:
		if cerr != nil {
			return fmt.Errorf("%w: %d bytes of %s written; run the same cp with --resume to go on", cerr, offset+n, dst)
		}
		if err := local.Sync(); err != nil {
			return err
		}
		return local.Close()
	}
	return cerr
}

// open opens the source at offset.
func (c *copier) open(src storeRef, offset int64) (io.ReadCloser, error) {
	switch {
	case src.path == "-":
		if offset > 0 {
			return nil, usageErr(errors.New("--resume can not skip ahead in standard input"))
		}
		return io.NopCloser(c.a.stdin), nil
	case src.local():
		f, err := os.Open(src.path)
		if err != nil {
			return nil, err
		}
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	return src.d.Reader(c.ctx, src.path, offset)
}

// copyCtx copies in to out until EOF, an error, or ctx ends, counting on
// bar; 8 MiB at a time, so a resumable writer gets whole parts.
func copyCtx(ctx context.Context, out io.Writer, in io.Reader, bar *progressBar) (int64, error) {
	buf := make([]byte, 8<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := io.ReadFull(in, buf)
		if k > 0 {
			m, werr := out.Write(buf[:k])
			n += int64(m)
			bar.add(m)
			if werr != nil {
				return n, werr
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}
