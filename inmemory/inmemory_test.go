package inmemory

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
)

var storeSeq atomic.Int64

// harness opens drivers on one named store per test, at the requested root.
func harness(t *testing.T) conformance.Harness {
	name := fmt.Sprintf("conformance-%s-%d", t.Name(), storeSeq.Add(1))
	return conformance.Harness{
		Name:          Name,
		RootPrefix:    true,
		SingleProcess: true,
		New: func(ctx context.Context, root string) (driver.Driver, error) {
			return FromParams(ctx, driver.Params{"store": name, "maxsize": "2GiB", "rootdirectory": root})
		},
		LeftoverUploads: func(ctx context.Context, d driver.Driver) ([]string, error) {
			b := driver.BackendOf(d).(*backend)
			b.s.mu.Lock()
			defer b.s.mu.Unlock()
			var out []string
			for k := range b.s.uploads {
				if strings.HasPrefix(k, b.root+"/") {
					out = append(out, k)
				}
			}
			sort.Strings(out)
			return out, nil
		},
		SkipCases: map[string]string{
			"LargeStream5GiB":   "the in-memory store holds everything in this process's memory (maxsize)",
			"MixedAppends10GiB": "the in-memory store holds everything in this process's memory (maxsize)",
		},
	}
}

func TestConformance(t *testing.T) {
	conformance.Run(t, harness(t))
}

func TestMaxSize(t *testing.T) {
	ctx := t.Context()
	d, err := FromParams(ctx, driver.Params{"maxsize": "1KiB"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.PutContent(ctx, "/a", make([]byte, 600)); err != nil {
		t.Fatal(err)
	}
	err = d.PutContent(ctx, "/b", make([]byte, 600))
	if !errors.Is(err, ErrFull) || !errors.Is(err, driver.ErrUnavailable) {
		t.Fatalf("PutContent past maxsize: %v, want ErrFull of kind unavailable", err)
	}
	if _, err := d.Stat(ctx, "/b"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("a refused PutContent left a file: %v", err)
	}
	w, err := d.Writer(ctx, "/c", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 400)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 100)); !errors.Is(err, ErrFull) {
		t.Fatalf("Write past maxsize: %v", err)
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	// Cancel and Delete give the space back.
	if err := d.Delete(ctx, "/a"); err != nil {
		t.Fatal(err)
	}
	if err := d.PutContent(ctx, "/b", make([]byte, 1024)); err != nil {
		t.Fatalf("after Delete and Cancel the space is not back: %v", err)
	}
}

func TestConfig(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		params driver.Params
		want   string
	}{
		{driver.Params{"maxsize": "1"}, "maxsize"},
		{driver.Params{"rootdirectory": "rel"}, "rootdirectory"},
		{driver.Params{"bogus": 1}, `unknown parameter "bogus"`},
	} {
		_, err := FromParams(ctx, c.params)
		if !errors.Is(err, driver.ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a config error naming %s", c.params, err, c.want)
		}
	}
	if _, err := FromParams(ctx, driver.Params{"useragent": "registry/3"}); err != nil {
		t.Errorf("useragent: %v", err)
	}
	name := "config-" + t.Name()
	if _, err := FromParams(ctx, driver.Params{"store": name, "maxsize": "1MiB"}); err != nil {
		t.Fatal(err)
	}
	if _, err := FromParams(ctx, driver.Params{"store": name, "maxsize": "2MiB"}); err == nil || !strings.Contains(err.Error(), "maxsize") {
		t.Errorf("a shared store reopened with another maxsize: %v", err)
	}
}

// TestSharedStore: drivers opened with the same store name see each
// other's files and uploads; a private store sees nothing of them.
func TestSharedStore(t *testing.T) {
	ctx := t.Context()
	name := "shared-" + t.Name()
	d1, _ := FromParams(ctx, driver.Params{"store": name})
	d2, _ := FromParams(ctx, driver.Params{"store": name})
	priv, _ := FromParams(ctx, driver.Params{})
	w, err := d1.Writer(ctx, "/up", false)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("abc"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2, err := d2.Writer(ctx, "/up", true)
	if err != nil || w2.Size() != 3 {
		t.Fatalf("resume through another driver of the store: %v, size %d", err, w2.Size())
	}
	w2.Write([]byte("de"))
	if err := w2.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	w2.Close()
	if b, err := d1.GetContent(ctx, "/up"); err != nil || string(b) != "abcde" {
		t.Fatalf("GetContent: %q, %v", b, err)
	}
	if _, err := priv.Stat(ctx, "/up"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("a private store sees a shared store's file: %v", err)
	}
}
