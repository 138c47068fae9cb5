package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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

func runLs(ctx context.Context, a *app, args []string) error {
	var recursive, long bool
	d, pos, err := a.storeCommand(ctx, "ls", args, 0, 1, func(fs fsetter) {
		fs.BoolVar(&recursive, "r", false, "walk everything below the folder")
		fs.BoolVar(&long, "l", false, "show size and modification time")
	})
	if err != nil {
		return err
	}
	folder := "/"
	if len(pos) == 1 {
		folder = pos[0]
	}
	show := func(fi driver.FileInfo) {
		name := fi.Path()
		if fi.IsDir() {
			name += "/"
		}
		if !long {
			fmt.Fprintln(a.stdout, name)
			return
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
	if recursive {
		return d.Walk(ctx, folder, func(fi driver.FileInfo) error {
			show(fi)
			return nil
		})
	}
	names, err := d.List(ctx, folder)
	if errors.Is(err, driver.ErrNotFound) {
		// ls of a file shows the file, as ls(1) does.
		if fi, serr := d.Stat(ctx, folder); serr == nil && !fi.IsDir() {
			show(fi)
			return nil
		}
	}
	if err != nil {
		return err
	}
	for _, n := range names {
		if !long {
			// Without -l, print the paths as listed: telling folders
			// from files would cost a Stat per entry.
			fmt.Fprintln(a.stdout, n)
			continue
		}
		fi, err := d.Stat(ctx, n)
		if errors.Is(err, driver.ErrNotFound) {
			continue // removed since the listing
		}
		if err != nil {
			return err
		}
		show(fi)
	}
	return nil
}

func runStat(ctx context.Context, a *app, args []string) error {
	d, pos, err := a.storeCommand(ctx, "stat", args, 1, 1, nil)
	if err != nil {
		return err
	}
	fi, err := d.Stat(ctx, pos[0])
	if err != nil {
		return err
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
	d, pos, err := a.storeCommandPut(ctx, args)
	if err != nil {
		return err
	}
	src, dst := pos[0], pos[1]
	var in io.Reader = a.stdin
	if src != "-" {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
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
// file (or -) and one store path; with one argument it reads stdin.
func (a *app) storeCommandPut(ctx context.Context, args []string) (driver.Driver, []string, error) {
	cmd := findCommand("put")
	fs := a.newFlags("put", cmd.usage, cmd.summary)
	var cf configFlags
	cf.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if err := wantArgs(pos, 1, 2, cmd.usage); err != nil {
		return nil, nil, err
	}
	if len(pos) == 1 {
		pos = []string{"-", pos[0]}
	}
	if !driver.ValidPath(pos[1]) {
		return nil, nil, usageErr(fmt.Errorf("%q is not a store file path (want /a/b, components of A-Z a-z 0-9 . _ -)", pos[1]))
	}
	d, err := a.openStore(ctx, &cf)
	return d, pos, err
}

func runRm(ctx context.Context, a *app, args []string) error {
	d, pos, err := a.storeCommand(ctx, "rm", args, 1, 1, nil)
	if err != nil {
		return err
	}
	return d.Delete(ctx, pos[0])
}

func runMv(ctx context.Context, a *app, args []string) error {
	d, pos, err := a.storeCommand(ctx, "mv", args, 2, 2, nil)
	if err != nil {
		return err
	}
	return d.Move(ctx, pos[0], pos[1])
}

func runPurge(ctx context.Context, a *app, args []string) error {
	olderThan := 168 * time.Hour
	d, _, err := a.storeCommand(ctx, "purge-uploads", args, 0, 0, func(fs fsetter) {
		fs.DurationVar(&olderThan, "older-than", olderThan, "remove uploads started longer than this `duration` ago")
	})
	if err != nil {
		return err
	}
	if olderThan < 0 {
		return usageErr(errors.New("--older-than must not be negative"))
	}
	p, ok := driver.BackendOf(d).(driver.UploadPurger)
	if !ok {
		return fmt.Errorf("driver %s keeps no server-side upload state to purge (it does not implement driver.UploadPurger)", d.Name())
	}
	n, err := p.PurgeUploads(ctx, olderThan)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "removed %d uploads older than %s\n", n, olderThan)
	return nil
}
