package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/stowage/stowage/driver"
)

// openStore opens the configured store; with no configuration it is a
// usage error (the browsing commands have no default store).
func (a *app) openStore(ctx context.Context, cf *configFlags) (driver.Driver, error) {
	cfg, ok, err := cf.load(a.environ)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, usageErr(errors.New("no store configured: use --config FILE, $" + EnvConfig + " or --driver NAME --param key=value"))
	}
	return cfg.open(ctx)
}

// storeCommand parses the flags of a simple store command, checks its
// number of positional arguments and opens the store.
func (a *app) storeCommand(ctx context.Context, name string, args []string, minArgs, maxArgs int, extra func(fsetter)) (driver.Driver, []string, error) {
	cmd := findCommand(name)
	fs := a.newFlags(name, cmd.usage, cmd.summary)
	var cf configFlags
	cf.register(fs)
	if extra != nil {
		extra(fs)
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if err := wantArgs(pos, minArgs, maxArgs, cmd.usage); err != nil {
		return nil, nil, err
	}
	for _, p := range pos {
		if !driver.ValidFolder(p) {
			return nil, nil, usageErr(fmt.Errorf("%q is not a store path (want /a/b, components of A-Z a-z 0-9 . _ -)", p))
		}
	}
	d, err := a.openStore(ctx, &cf)
	return d, pos, err
}

// fsetter is the part of *flag.FlagSet the commands add flags with.
type fsetter interface {
	BoolVar(p *bool, name string, value bool, usage string)
	Int64Var(p *int64, name string, value int64, usage string)
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
}

// fileJSON is one file or folder in the --json output of ls and stat.
type fileJSON struct {
	Path string `json:"path"`
	// Kind is "file" or "folder".
	Kind string `json:"kind"`
	// Size is the file's size in bytes (absent for a folder).
	Size *int64 `json:"size,omitempty"`
	// Modified is the modification time (RFC 3339), when the backend
	// reports one.
	Modified string `json:"modified,omitempty"`
}

func toJSON(fi driver.FileInfo) fileJSON {
	j := fileJSON{Path: fi.Path(), Kind: "file"}
	if fi.IsDir() {
		j.Kind = "folder"
	} else {
		n := fi.Size()
		j.Size = &n
	}
	if !fi.ModTime().IsZero() {
		j.Modified = fi.ModTime().UTC().Format(time.RFC3339Nano)
	}
	return j
}

// statAll stats paths, statParallel at a time, keeping their order; a path
// removed since it was listed is left out.
func statAll(ctx context.Context, d driver.Driver, paths []string) ([]driver.FileInfo, error) {
	const statParallel = 8
	infos := make([]driver.FileInfo, len(paths))
	errs := make([]error, len(paths))
	sem := make(chan struct{}, statParallel)
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			infos[i], errs[i] = d.Stat(ctx, p)
		}()
	}
	wg.Wait()
	out := infos[:0]
	for i, fi := range infos {
		switch {
		case errors.Is(errs[i], driver.ErrNotFound):
			continue // removed since the listing
		case errs[i] != nil:
			return nil, errs[i]
		}
		out = append(out, fi)
	}
	return out, nil
}

func runLs(ctx context.Context, a *app, args []string) error {
	var recursive, long, asJSON bool
	d, pos, err := a.storeCommand(ctx, "ls", args, 0, 1, func(fs fsetter) {
		fs.BoolVar(&recursive, "r", false, "walk everything below the folder")
		fs.BoolVar(&long, "l", false, "show size and modification time")
		fs.BoolVar(&asJSON, "json", false, "print a JSON array of {path, kind, size, modified}")
	})
	if err != nil {
		return err
	}
	folder := "/"
	if len(pos) == 1 {
		folder = pos[0]
	}
	var infos []driver.FileInfo
	if recursive {
		err = d.Walk(ctx, folder, func(fi driver.FileInfo) error {
			infos = append(infos, fi)
			return nil
		})
	} else {
		var names []string
		names, err = d.List(ctx, folder)
		if err == nil {
			// A Stat per entry tells folders (printed with a trailing
			// slash) from files; 8 at a time.
			infos, err = statAll(ctx, d, names)
		}
	}
	if errors.Is(err, driver.ErrNotFound) {
		// ls of a file shows the file, as ls(1) does.
		if fi, serr := d.Stat(ctx, folder); serr == nil && !fi.IsDir() {
			infos, err = []driver.FileInfo{fi}, nil
		}
	}
	if err != nil {
		return err
	}
	if asJSON {
		out := make([]fileJSON, 0, len(infos))
		for _, fi := range infos {
			out = append(out, toJSON(fi))
		}
		return writeJSON(a.stdout, out)
	}
	for _, fi := range infos {
		name := fi.Path()
		if fi.IsDir() {
			name += "/"
		}
		if !long {
			fmt.Fprintln(a.stdout, name)
			continue
		}
		when := "-"
		if !fi.ModTime().IsZero() {
			when = fi.ModTime().UTC().Format(time.RFC3339)
		}
		size := "-"
		if !fi.IsDir() {
			size = fmt.Sprint(fi.Size())
		}
		fmt.Fprintf(a.stdout, "%12s  %-20s  %s\n", size, when, name)
	}
	return nil
}

// writeJSON prints v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runStat(ctx context.Context, a *app, args []string) error {
	var asJSON bool
	d, pos, err := a.storeCommand(ctx, "stat", args, 1, 1, func(fs fsetter) {
		fs.BoolVar(&asJSON, "json", false, "print a JSON object {path, kind, size, modified}")
	})
	if err != nil {
		return err
	}
	fi, err := d.Stat(ctx, pos[0])
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.stdout, toJSON(fi))
	}
	kind := "file"
	if fi.IsDir() {
		kind = "folder"
	}
	fmt.Fprintf(a.stdout, "path: %s\nkind: %s\nsize: %d\n", fi.Path(), kind, fi.Size())
	if !fi.ModTime().IsZero() {
		fmt.Fprintf(a.stdout, "modified: %s\n", fi.ModTime().UTC().Format(time.RFC3339Nano))
	}
	return nil
}

func runCat(ctx context.Context, a *app, args []string) error {
	var offset int64
	d, pos, err := a.storeCommand(ctx, "cat", args, 1, 1, func(fs fsetter) {
		fs.Int64Var(&offset, "offset", 0, "start reading at this byte `offset`")
	})
	if err != nil {
		return err
	}
	r, err := d.Reader(ctx, pos[0], offset)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := io.Copy(a.stdout, r); err != nil {
		return err
	}
	return r.Close()
}

func runPut(ctx context.Context, a *app, args []string) error {
	var dryRun bool
	d, pos, err := a.storeCommandPut(ctx, args, func(fs fsetter) {
		fs.BoolVar(&dryRun, "dry-run", false, "say what would be uploaded and replaced, change nothing")
	})
	if err != nil {
		return err
	}
	src, dst := pos[0], pos[1]
	var in io.Reader = a.stdin
	size := int64(-1)
	if src != "-" {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			if fi.IsDir() {
				return usageErr(fmt.Errorf("%s is a folder: put uploads one file", src))
			}
			size = fi.Size()
		}
		in = f
	}
	if dryRun {
		what := "standard input"
		if src != "-" {
			what = fmt.Sprintf("%s (%d bytes)", src, size)
		}
		fi, err := d.Stat(ctx, dst)
		switch {
		case err == nil && fi.IsDir():
			return fmt.Errorf("%s is a folder in the store: put would fail", dst)
		case err == nil:
			fmt.Fprintf(a.stdout, "would upload %s to %s, replacing a file of %d bytes\n", what, dst, fi.Size())
		case errors.Is(err, driver.ErrNotFound):
			fmt.Fprintf(a.stdout, "would upload %s to %s (new file)\n", what, dst)
		default:
			return err
		}
		return nil
	}
	w, err := d.Writer(ctx, dst, false)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, in); err != nil {
		w.Cancel(context.WithoutCancel(ctx))
		w.Close()
		return err
	}
	if err := w.Commit(ctx); err != nil {
		w.Cancel(context.WithoutCancel(ctx))
		w.Close()
		return err
	}
	return w.Close()
}

// storeCommandPut is storeCommand for put, whose first argument is a local
// file (or - for standard input) and whose second is a store path. Both are
// required: a forgotten destination must not turn the local file's name into
// a store path and standard input into its content.
func (a *app) storeCommandPut(ctx context.Context, args []string, extra func(fsetter)) (driver.Driver, []string, error) {
	cmd := findCommand("put")
	fs := a.newFlags("put", cmd.usage, cmd.summary)
	var cf configFlags
	cf.register(fs)
	if extra != nil {
		extra(fs)
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if len(pos) == 1 {
		return nil, nil, usageErr(fmt.Errorf("want a source and a destination: stowage put FILE PATH (or - PATH for standard input); got only %q", pos[0]))
	}
	if err := wantArgs(pos, 2, 2, cmd.usage); err != nil {
		return nil, nil, err
	}
	if !driver.ValidPath(pos[1]) {
		return nil, nil, usageErr(fmt.Errorf("%q is not a store file path (want /a/b, components of A-Z a-z 0-9 . _ -)", pos[1]))
	}
	d, err := a.openStore(ctx, &cf)
	return d, pos, err
}

func runRm(ctx context.Context, a *app, args []string) error {
	var recursive, dryRun bool
	d, pos, err := a.storeCommand(ctx, "rm", args, 1, 1, func(fs fsetter) {
		fs.BoolVar(&recursive, "r", false, "delete a folder with everything below it")
		fs.BoolVar(&dryRun, "dry-run", false, "list what would be deleted, delete nothing")
	})
	if err != nil {
		return err
	}
	p := pos[0]
	if p == "/" {
		return usageErr(errors.New("refusing to delete the store root /: a driver deletes folders below the root, not the root itself; delete its folders one by one with rm -r /FOLDER (see stowage ls /)"))
	}
	fi, err := d.Stat(ctx, p)
	if err != nil {
		return err
	}
	if fi.IsDir() && !recursive {
		return usageErr(fmt.Errorf("%s is a folder: use rm -r to delete it with everything below it (rm -r --dry-run lists what that would delete)", p))
	}
	if dryRun {
		var files, bytes int64
		err := d.Walk(ctx, p, func(fi driver.FileInfo) error {
			if !fi.IsDir() {
				files++
				bytes += fi.Size()
				fmt.Fprintf(a.stdout, "would delete %s\n", fi.Path())
			}
			return nil
		})
		if errors.Is(err, driver.ErrNotFound) && !fi.IsDir() {
			// A file: Walk lists folders only.
			files, bytes, err = 1, fi.Size(), nil
			fmt.Fprintf(a.stdout, "would delete %s\n", p)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "dry run: %d files, %d bytes would be deleted\n", files, bytes)
		return nil
	}
	return d.Delete(ctx, p)
}

func runMv(ctx context.Context, a *app, args []string) error {
	var dryRun bool
	d, pos, err := a.storeCommand(ctx, "mv", args, 2, 2, func(fs fsetter) {
		fs.BoolVar(&dryRun, "dry-run", false, "say what would be moved and replaced, change nothing")
	})
	if err != nil {
		return err
	}
	if dryRun {
		src, err := d.Stat(ctx, pos[0])
		if err != nil {
			return err
		}
		if src.IsDir() {
			return fmt.Errorf("%s is a folder: mv moves one file", pos[0])
		}
		dst, err := d.Stat(ctx, pos[1])
		switch {
		case err == nil && dst.IsDir():
			return fmt.Errorf("%s is a folder: mv would fail", pos[1])
		case err == nil:
			fmt.Fprintf(a.stdout, "would move %s (%d bytes) to %s, replacing a file of %d bytes\n", pos[0], src.Size(), pos[1], dst.Size())
		case errors.Is(err, driver.ErrNotFound):
			fmt.Fprintf(a.stdout, "would move %s (%d bytes) to %s (new file)\n", pos[0], src.Size(), pos[1])
		default:
			return err
		}
		return nil
	}
	return d.Move(ctx, pos[0], pos[1])
}

func runPurge(ctx context.Context, a *app, args []string) error {
	olderThan := 168 * time.Hour
	var dryRun, asJSON bool
	d, _, err := a.storeCommand(ctx, "purge-uploads", args, 0, 0, func(fs fsetter) {
		fs.DurationVar(&olderThan, "older-than", olderThan, "remove uploads started longer than this `duration` ago")
		fs.BoolVar(&dryRun, "dry-run", false, "list the uploads that would be removed (count, bytes, age), remove nothing")
		fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	})
	if err != nil {
		return err
	}
	if olderThan < 0 {
		return usageErr(errors.New("--older-than must not be negative"))
	}
	b := driver.BackendOf(d)
	p, ok := b.(driver.UploadPurger)
	if !ok {
		return fmt.Errorf("driver %s keeps no server-side upload state to purge (it does not implement driver.UploadPurger)", d.Name())
	}
	lister, canList := b.(driver.UploadLister)
	if dryRun && !canList {
		return fmt.Errorf("driver %s can not list its uploads without removing them (it does not implement driver.UploadLister): --dry-run is not possible", d.Name())
	}
	rep := purgeReport{OlderThan: olderThan.String(), DryRun: dryRun, Bytes: -1}
	now := time.Now()
	if canList {
		rep.Bytes = 0
		err := lister.ListUploads(ctx, olderThan, func(u driver.UploadInfo) error {
			rep.Uploads = append(rep.Uploads, purgeUpload{Path: u.Path, ID: u.ID, Started: u.Started.UTC().Format(time.RFC3339), Age: now.Sub(u.Started).Round(time.Second).String(), Bytes: u.Size})
			if u.Size >= 0 && rep.Bytes >= 0 {
				rep.Bytes += u.Size
			} else {
				rep.Bytes = -1
			}
			if age := now.Sub(u.Started); age > rep.oldest {
				rep.oldest = age
				rep.Oldest = age.Round(time.Second).String()
			}
			return nil
		})
		if err != nil {
			return err
		}
		rep.Count = len(rep.Uploads)
	}
	if !dryRun {
		n, err := p.PurgeUploads(ctx, olderThan)
		if err != nil {
			return err
		}
		rep.Count = n
	}
	if asJSON {
		return writeJSON(a.stdout, rep)
	}
	verb := "removed"
	if dryRun {
		verb = "would remove"
		for _, u := range rep.Uploads {
			size := "? bytes"
			if u.Bytes >= 0 {
				size = fmt.Sprintf("%d bytes", u.Bytes)
			}
			name := u.Path
			if name == "" {
				name = u.ID
			}
			fmt.Fprintf(a.stdout, "would remove %s (%s, started %s, %s ago)\n", name, size, u.Started, u.Age)
		}
	}
	fmt.Fprintf(a.stdout, "%s %d uploads older than %s", verb, rep.Count, olderThan)
	if canList && rep.Count > 0 {
		if rep.Bytes >= 0 {
			fmt.Fprintf(a.stdout, ", %d bytes", rep.Bytes)
		}
		fmt.Fprintf(a.stdout, ", the oldest started %s ago", rep.Oldest)
	}
	fmt.Fprintln(a.stdout)
	return nil
}

// purgeReport is what purge-uploads found and removed.
type purgeReport struct {
	OlderThan string `json:"older_than"`
	DryRun    bool   `json:"dry_run"`
	// Count is the number of uploads removed (or, with DryRun, found).
	Count int `json:"count"`
	// Bytes is what the found uploads held; -1 when unknown.
	Bytes   int64         `json:"bytes"`
	Oldest  string        `json:"oldest_age,omitempty"`
	Uploads []purgeUpload `json:"uploads,omitempty"`
	oldest  time.Duration
}

// purgeUpload is one upload in a purgeReport.
type purgeUpload struct {
	Path    string `json:"path,omitempty"`
	ID      string `json:"id"`
	Started string `json:"started"`
	Age     string `json:"age"`
	Bytes   int64  `json:"bytes"`
}
