package registry_test

import (
	"context"
	"errors"
	"io"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/registry"
)

// TestErrorsAndUnwrap checks the error types the adapter gives for the
// cases Distribution's callers switch on, with the details they read, and
// that Unwrap reaches the stowage driver behind the factory's driver.
func TestErrorsAndUnwrap(t *testing.T) {
	ctx := context.Background()
	sd, err := factory.Create(ctx, "filesystem", map[string]any{"rootdirectory": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := registry.Unwrap(sd)
	if !ok || d.Name() != "filesystem" {
		t.Fatalf("Unwrap = %v, %v", d, ok)
	}
	if _, ok := registry.Unwrap(nil); ok {
		t.Error("Unwrap(nil) reported a stowage driver")
	}
	if err := sd.PutContent(ctx, "/a/b", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	// Stowage checks offsets in its own layer: through the adapter alone
	// (Distribution's base checks first) the offset still reaches the error.
	if _, err := registry.Adapt(d).Reader(ctx, "/a/b", -3); !errors.As(err, new(storagedriver.InvalidOffsetError)) {
		t.Errorf("Reader at -3: %T %v", err, err)
	}
	var off storagedriver.InvalidOffsetError
	if _, err := sd.Reader(ctx, "/a/b", -3); !errors.As(err, &off) || off.Offset != -3 || off.Path != "/a/b" {
		t.Errorf("Reader at -3: %#v", err)
	}
	var nf storagedriver.PathNotFoundError
	if _, err := sd.Stat(ctx, "/a/missing"); !errors.As(err, &nf) || nf.Path != "/a/missing" || nf.DriverName != "filesystem" {
		t.Errorf("Stat of a missing path: %#v", err)
	}
	if err := sd.Move(ctx, "/a/missing", "/c"); !errors.As(err, &nf) || nf.Path != "/a/missing" {
		t.Errorf("Move of a missing path: %#v", err)
	}
	if _, err := sd.Writer(ctx, "/a/missing", true); !errors.As(err, &nf) {
		t.Errorf("append to a missing path: %#v", err)
	}
	var ip storagedriver.InvalidPathError
	if err := registry.Adapt(d).PutContent(ctx, "/a//b", nil); !errors.As(err, &ip) || ip.Path != "/a//b" {
		t.Errorf("PutContent of an invalid path through the adapter alone: %#v", err)
	}
	r, err := sd.Reader(ctx, "/a/b", 5)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(r); err != nil || len(b) != 0 {
		t.Errorf("Reader at the size: %q, %v", b, err)
	}
	r.Close()
	// A writer used after it ended returns stowage's state sentinels.
	w, err := sd.Writer(ctx, "/w", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, driver.ErrWriterClosed) {
		t.Errorf("Write after Close: %v", err)
	}
}
