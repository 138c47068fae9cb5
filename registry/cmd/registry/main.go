// Command registry is CNCF Distribution's registry (v3.1.2) with stowage's
// storage backends in place of Distribution's own, under Distribution's
// standard driver names: filesystem, s3, gcs and azure, and swift and oss
// (the names of Distribution 2.x's drivers, which v3 dropped). An existing
// config.yml works unchanged (see the README for the parameters that
// differ); everything else is Distribution's: the serve and
// garbage-collect commands, auth (htpasswd, silly, token), the pull-through
// proxy, the inmemory driver and the storage middlewares (cloudfront,
// redirect, rewrite).
//
//	registry serve config.yml
//	registry garbage-collect [--dry-run] [--delete-untagged] config.yml
package main

import (
	"os"

	_ "net/http/pprof"

	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/silly"
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	_ "github.com/distribution/distribution/v3/registry/proxy"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/middleware/cloudfront"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/middleware/redirect"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/middleware/rewrite"

	// stowage's backends as filesystem, s3, gcs, azure, swift and oss.
	// Distribution's own drivers of those names must not be imported: a
	// name registers once.
	_ "github.com/stowage/stowage/registry/drivers"
)

func main() {
	if err := registry.RootCmd.Execute(); err != nil {
		os.Exit(1)
	}
}
