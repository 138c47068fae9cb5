package driver_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stowage/stowage/driver"
	_ "github.com/stowage/stowage/inmemory" // registers "inmemory"; import s3, gcs, ... the same way
)

// Open a backend by name from the parameters a registry config holds, and
// tell a missing file from other errors with errors.Is.
func ExampleOpen() {
	ctx := context.Background()
	d, err := driver.Open(ctx, "inmemory", driver.Params{"maxsize": "64MiB"})
	if err != nil {
		panic(err)
	}
	if err := d.PutContent(ctx, "/docs/hello.txt", []byte("hello")); err != nil {
		panic(err)
	}
	b, _ := d.GetContent(ctx, "/docs/hello.txt")
	fmt.Printf("%s\n", b)

	_, err = d.Stat(ctx, "/docs/missing.txt")
	fmt.Println(errors.Is(err, driver.ErrNotFound))
	fmt.Println(err)
	// Output:
	// hello
	// true
	// inmemory: Stat /docs/missing.txt: not found: no such file
}

// A bad parameter is a config error that names the driver, the parameter
// and its bounds, never a secret.
func ExampleOpen_configError() {
	_, err := driver.Open(context.Background(), "inmemory", driver.Params{"maxsize": "10M"})
	fmt.Println(errors.Is(err, driver.ErrInvalidArgument))
	fmt.Println(err)
	// Output:
	// true
	// inmemory: config: invalid argument: parameter maxsize: "10M" is ambiguous: write 10MiB for 10×2^20 bytes or 10MB for 10×10^6 (a bare M means one in some tools and the other in others)
}

// Retry what the service throttled, with backoff that stops with the
// context; give up at once on anything else.
func ExampleErrThrottled() {
	ctx := context.Background()
	d, _ := driver.Open(ctx, "inmemory", nil)
	put := func() error { return d.PutContent(ctx, "/a", []byte("a")) }
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := put()
		if err == nil || !errors.Is(err, driver.ErrThrottled) || attempt == 5 {
			fmt.Println("done:", err)
			return
		}
		select {
		case <-time.After(delay):
			delay *= 2
		case <-ctx.Done():
			return
		}
	}
	// Output:
	// done: <nil>
}
