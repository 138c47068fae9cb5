package driver

import (
	"context"
	"errors"
	"sort"
	"strings"
)

// WalkOptions are the settings of one Walk.
type WalkOptions struct {
	// StartAfter, when not "", is a path: only entries whose walk key (the
	// path, with a trailing slash for a folder) sorts after it are visited.
	// A catalog page resumes with the last path it returned.
	StartAfter string
}

// WalkOption sets a WalkOptions field.
type WalkOption func(*WalkOptions)

// WithStartAfter resumes a walk after hint (see WalkOptions.StartAfter).
func WithStartAfter(hint string) WalkOption {
	return func(o *WalkOptions) { o.StartAfter = hint }
}

// WithStartAfterHint is WithStartAfter under Distribution's name.
func WithStartAfterHint(hint string) WalkOption { return WithStartAfter(hint) }

// fnError marks an error that came from the caller's WalkFn, so that it is
// returned unchanged.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

func (d *base) Walk(ctx context.Context, path string, fn WalkFn, opts ...WalkOption) error {
	if !ValidFolder(path) {
		return d.badPath("Walk", path)
	}
	var o WalkOptions
	for _, opt := range opts {
		opt(&o)
	}
	call := func(fi FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := fn(fi)
		if err == nil || errors.Is(err, ErrSkipDir) || errors.Is(err, ErrFilledBuffer) {
			return err
		}
		return &fnError{err}
	}
	var err error
	if fl, ok := d.b.(FlatLister); ok {
		err = walkFlat(ctx, d.b, fl, path, o, call)
	} else {
		err = walkTree(ctx, d.b, path, o, call)
		if errors.Is(err, errSkipRest) {
			err = nil
		}
	}
	var fe *fnError
	switch {
	case err == nil || errors.Is(err, ErrFilledBuffer):
		return nil
	case errors.As(err, &fe):
		return fe.err
	}
	return d.err("Walk", path, err)
}

// walkFlat walks with one flat listing of files, deriving the folders.
func walkFlat(ctx context.Context, b Backend, fl FlatLister, root string, o WalkOptions, call WalkFn) error {
	var (
		stack []string // folders open above the current file, outermost first
		skip  string   // prefix (with a trailing slash) of entries to skip
		found bool
	)
	// seen reports whether the entry with WalkKey k sorts at or before the
	// start-after hint, in the listing's order.
	seen := func(k string) bool { return o.StartAfter != "" && k <= o.StartAfter }
	if lo, ok := fl.(ListOrderer); ok && o.StartAfter != "" {
		hint := lo.ListOrderKey(o.StartAfter)
		seen = func(k string) bool { return lo.ListOrderKey(k) <= hint }
	}
	err := fl.ListFlat(ctx, root, o.StartAfter, func(fi FileInfo) error {
		found = true
		p := fi.Path()
		if skip != "" && strings.HasPrefix(p, skip) {
			return nil
		}
		skip = ""
		for len(stack) > 0 && !IsBelow(p, stack[len(stack)-1]) {
			stack = stack[:len(stack)-1]
		}
		// Open the folders between the innermost open one and the file.
		start := root
		if len(stack) > 0 {
			start = stack[len(stack)-1]
		}
		for _, a := range foldersBetween(start, p) {
			stack = append(stack, a)
			if seen(WalkKey(a, true)) {
				continue
			}
			if err := call(FileInfoFields{FPath: a, FIsDir: true}); err != nil {
				if errors.Is(err, ErrSkipDir) {
					skip = a + "/"
					return nil
				}
				return err
			}
		}
		if seen(p) {
			return nil
		}
		if err := call(fi); err != nil {
			if errors.Is(err, ErrSkipDir) {
				parent := Parent(p)
				if parent == root {
					return ErrFilledBuffer
				}
				skip = parent + "/"
				return nil
			}
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !found && root != "/" {
		fi, err := b.Stat(ctx, root)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return &Error{Kind: KindNotFound, Detail: "not a folder"}
		}
	}
	return nil
}

// foldersBetween returns the folders strictly between folder and the file p,
// outermost first: foldersBetween("/", "/a/b/c") is ["/a", "/a/b"].
func foldersBetween(folder, p string) []string {
	var out []string
	i := len(folder)
	if folder == "/" {
		i = 0
	}
	for {
		j := strings.IndexByte(p[i+1:], '/')
		if j < 0 {
			return out
		}
		i += 1 + j
		out = append(out, p[:i])
	}
}

// errSkipRest ends the listing of one folder in walkTree.
var errSkipRest = errors.New("skip the rest of this folder")

// walkTree is the generic Walk for backends without a flat listing: List
// each folder, Stat each child, visit in walk-key order.
func walkTree(ctx context.Context, b Backend, folder string, o WalkOptions, call WalkFn) error {
	children, err := b.List(ctx, folder)
	if err != nil {
		return err
	}
	entries := make([]FileInfo, 0, len(children))
	for _, c := range children {
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := b.Stat(ctx, c)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue // removed since the listing
			}
			return err
		}
		entries = append(entries, fi)
	}
	sort.Slice(entries, func(i, j int) bool {
		return WalkKey(entries[i].Path(), entries[i].IsDir()) < WalkKey(entries[j].Path(), entries[j].IsDir())
	})
	for _, e := range entries {
		key := WalkKey(e.Path(), e.IsDir())
		if o.StartAfter != "" && key <= o.StartAfter {
			if e.IsDir() && strings.HasPrefix(o.StartAfter, key) {
				if err := walkTree(ctx, b, e.Path(), o, call); err != nil && !errors.Is(err, errSkipRest) {
					return err
				}
			}
			continue
		}
		if err := call(e); err != nil {
			if errors.Is(err, ErrSkipDir) {
				if e.IsDir() {
					continue
				}
				return errSkipRest
			}
			return err
		}
		if e.IsDir() {
			if err := walkTree(ctx, b, e.Path(), o, call); err != nil && !errors.Is(err, errSkipRest) {
				return err
			}
		}
	}
	return nil
}
