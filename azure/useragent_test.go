package azure

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// TestUserAgent checks that the useragent parameter, which a registry adds
// to every storage block, is accepted and sent with every request.
func TestUserAgent(t *testing.T) {
	const ua = "distribution/v3.1.2 go1.26 stowage-test"
	cfg := testConfig(t, fmt.Sprintf("/t-useragent-%x", rand.Uint32()))
	openTest(t, context.Background(), cfg)
	p := driver.Params{
		"serviceurl": cfg.ServiceURL, "accountname": cfg.AccountName, "accountkey": cfg.AccountKey,
		"container": cfg.Container, "rootdirectory": cfg.RootDirectory, "useragent": ua,
	}
	var mu sync.Mutex
	var seen []string
	ctx := driver.WithTransport(context.Background(), func(base http.RoundTripper) http.RoundTripper {
		return testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			seen = append(seen, r.Header.Get("User-Agent"))
			mu.Unlock()
			return base.RoundTrip(r)
		})
	})
	d, err := driver.Open(ctx, Name, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.PutContent(ctx, "/a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "/a"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("no request seen")
	}
	for _, s := range seen {
		if s != ua {
			t.Errorf("User-Agent %q, want %q", s, ua)
		}
	}
}
