package inmemory_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/inmemory"
)

// An upload in two steps, as a registry's chunked upload does it: write,
// Close, resume with Writer(path, true), Commit. Until Commit the file is
// invisible.
func Example() {
	ctx := context.Background()
	d, err := driver.Open(ctx, inmemory.Name, driver.Params{"maxsize": "64MiB"})
	if err != nil {
		panic(err)
	}
	w, _ := d.Writer(ctx, "/uploads/blob", false)
	w.Write([]byte("hello, "))
	w.Close()

	_, err = d.Stat(ctx, "/uploads/blob")
	fmt.Println("before Commit:", errors.Is(err, driver.ErrNotFound))

	w, _ = d.Writer(ctx, "/uploads/blob", true)
	fmt.Println("resumed at", w.Size())
	w.Write([]byte("world"))
	if err := w.Commit(ctx); err != nil {
		panic(err)
	}
	w.Close()
	b, _ := d.GetContent(ctx, "/uploads/blob")
	fmt.Printf("%s\n", b)
	// Output:
	// before Commit: true
	// resumed at 7
	// hello, world
}
