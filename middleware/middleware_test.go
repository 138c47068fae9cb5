package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/inmemory"
	"github.com/stowage/stowage/middleware"
)

// recorder records every operation as "Name path bytes outcome".
type recorder struct {
	mu  sync.Mutex
	ops []string
}

func (r *recorder) Begin(ctx context.Context, op middleware.Op) (context.Context, middleware.End, error) {
	return ctx, func(n int64, err error) {
		out := "ok"
		if err != nil {
			out = driver.KindOf(err).String()
		}
		r.mu.Lock()
		r.ops = append(r.ops, fmt.Sprintf("%s %s %d %s", op.Name, op.Path, n, out))
		r.mu.Unlock()
	}, nil
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.ops
	r.ops = nil
	return o
}

func TestObserverSeesOperations(t *testing.T) {
	ctx := t.Context()
	inner, err := inmemory.New(ctx, inmemory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	d := middleware.Wrap(inner, rec)
	if driver.BackendOf(d) == nil || driver.BackendOf(d) != driver.BackendOf(inner) {
		t.Fatal("BackendOf does not reach the backend through the wrapper")
	}
	if _, ok := driver.BackendOf(d).(driver.UploadPurger); !ok {
		t.Fatal("UploadPurger hidden by the wrapper")
	}
	d.PutContent(ctx, "/a/b", []byte("hello"))
	d.GetContent(ctx, "/a/b")
	d.GetContent(ctx, "/missing")
	r, _ := d.Reader(ctx, "/a/b", 1)
	io.ReadAll(r)
	r.Close()
	w, _ := d.Writer(ctx, "/up", false)
	w.Write([]byte("12345678"))
	w.Close()
	w, _ = d.Writer(ctx, "/up", true)
	w.Write([]byte("90"))
	w.Commit(ctx)
	w.Close()
	d.Move(ctx, "/up", "/a/c")
	stop := errors.New("caller stops")
	if err := d.Walk(ctx, "/", func(driver.FileInfo) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Walk returned %v, want the function's error", err)
	}
	d.Delete(ctx, "/a")
	got := strings.Join(rec.take(), "\n")
	want := strings.Join([]string{
		"PutContent /a/b 5 ok",
		"GetContent /a/b 5 ok",
		"GetContent /missing 0 not found",
		"Reader /a/b 0 ok",
		"Read /a/b 4 ok",
		"Writer /up 0 ok",
		"Close /up 8 ok",
		"Writer /up 0 ok",
		"Commit /up 2 ok",
		"Close /up 0 ok",
		"Move /up 0 ok",
		"Walk / 0 ok",
		"Delete /a 0 ok",
	}, "\n")
	if got != want {
		t.Fatalf("operations:\n%s\nwant:\n%s", got, want)
	}
}

func TestObserverBeginErrorFailsOperation(t *testing.T) {
	ctx := t.Context()
	inner, _ := inmemory.New(ctx, inmemory.Config{})
	refuse := errors.New("refused")
	d := middleware.Wrap(inner, middleware.ObserverFunc(func(ctx context.Context, op middleware.Op) (context.Context, middleware.End, error) {
		if op.Name == "PutContent" {
			return ctx, nil, refuse
		}
		return ctx, nil, nil
	}))
	if err := d.PutContent(ctx, "/x", []byte("x")); !errors.Is(err, refuse) {
		t.Fatalf("PutContent: %v", err)
	}
	if _, err := d.Stat(ctx, "/x"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("a refused PutContent ran: %v", err)
	}
}

func TestWrapOrder(t *testing.T) {
	ctx := t.Context()
	inner, _ := inmemory.New(ctx, inmemory.Config{})
	var order []string
	obs := func(name string) middleware.Observer {
		return middleware.ObserverFunc(func(ctx context.Context, op middleware.Op) (context.Context, middleware.End, error) {
			order = append(order, name+" begin")
			return ctx, func(int64, error) { order = append(order, name+" end") }, nil
		})
	}
	d := middleware.Wrap(inner, obs("outer"), obs("inner"))
	d.Stat(ctx, "/")
	if got := strings.Join(order, ","); got != "outer begin,inner begin,inner end,outer end" {
		t.Fatalf("order: %s", got)
	}
}
