package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/stowage/stowage/driver"
)

// Baseline is the raw upload that `stowage bench --baseline` compares a
// driver with: the same bytes, sent to the same store, with the service's
// own SDK (or the operating system for the filesystem) and none of stowage's
// layers. Each backend registers one from a baseline_<name>.go file in this
// folder with registerBaseline.
type Baseline interface {
	// Upload stores size bytes read from r as the object that the driver
	// would store at path (a driver path such as "/bench-1/blob": the
	// baseline maps it below the configured root the way the driver does),
	// the fastest plain way the SDK or OS offers, durably (as durably as
	// the driver's Commit: for the filesystem, with fsync).
	Upload(ctx context.Context, path string, size int64, r io.Reader) error
	// Delete removes what Upload stored at path.
	Delete(ctx context.Context, path string) error
}

// BaselineFactory opens the baseline of one backend from the same parameters
// the driver was opened with (after the bench has set its working root, so
// rootdirectory already points at a fresh folder or prefix). A factory
// decodes what it needs with driver.Decode and ignores the rest.
type BaselineFactory func(ctx context.Context, params driver.Params) (Baseline, error)

var (
	baselineMu sync.Mutex
	baselines  = map[string]BaselineFactory{}
)

// registerBaseline makes f the baseline of the driver registered as name.
// It panics when name already has one.
func registerBaseline(name string, f BaselineFactory) {
	baselineMu.Lock()
	defer baselineMu.Unlock()
	if _, dup := baselines[name]; dup {
		panic("stowage: baseline " + name + " registered twice")
	}
	baselines[name] = f
}

// baselineFor returns the baseline factory of a driver, or nil.
func baselineFor(name string) BaselineFactory {
	baselineMu.Lock()
	defer baselineMu.Unlock()
	return baselines[name]
}

// baselineNames lists the drivers that have a baseline, sorted.
func baselineNames() []string {
	baselineMu.Lock()
	defer baselineMu.Unlock()
	var names []string
	for n := range baselines {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func init() { registerBaseline("filesystem", openFSBaseline) }

// fsBaseline is the filesystem baseline: io.Copy into a file below the
// root directory, then fsync, with nothing else (no temporary file, no
// rename, no fsync of the folder).
type fsBaseline struct{ root string }

// openFSBaseline picks the root directory out of the filesystem driver's
// parameters; the others belong to the driver and are ignored here.
func openFSBaseline(_ context.Context, params driver.Params) (Baseline, error) {
	root := ""
	for k, v := range params {
		if strings.EqualFold(k, "rootdirectory") {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("filesystem baseline: rootdirectory is not a string")
			}
			root = s
		}
	}
	if root == "" {
		return nil, fmt.Errorf("filesystem baseline: no rootdirectory")
	}
	return &fsBaseline{root: root}, nil
}

func (b *fsBaseline) file(path string) string {
	return filepath.Join(b.root, filepath.FromSlash(path))
}

func (b *fsBaseline) Upload(ctx context.Context, path string, size int64, r io.Reader) error {
	name := b.file(path)
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if err == nil && n != size {
		err = fmt.Errorf("filesystem baseline: copied %d bytes, want %d", n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (b *fsBaseline) Delete(ctx context.Context, path string) error {
	return os.Remove(b.file(path))
}
