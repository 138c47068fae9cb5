package registry_test

import (
	"context"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/factory"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/registry/drivers"
)

// TestUserAgentAccepted opens every backend with the useragent parameter
// that Distribution's registry adds to every storage block
// (registry/handlers/app.go): a backend that rejected it could not be used
// from a registry config at all.
func TestUserAgentAccepted(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			params := b.params(t)
			params["useragent"] = "distribution/v3.1.2 go1.26"
			sd, err := factory.Create(context.Background(), b.driver, params)
			if err != nil {
				t.Fatalf("factory.Create(%s) with useragent: %v", b.driver, err)
			}
			if sd.Name() != b.driver {
				t.Errorf("Name() = %q, want %q", sd.Name(), b.driver)
			}
		})
	}
}

// TestParametersOfEveryBackend asks every backend registered for
// Distribution which parameters it knows: each declares useragent, its
// credentials are marked secret, and Decode accepts every listed key.
func TestParametersOfEveryBackend(t *testing.T) {
	secrets := map[string][]string{
		"filesystem": nil,
		"s3":         {"secretkey", "sessiontoken"},
		"gcs":        {"credentials"},
		"azure":      {"accountkey", "connectionstring", "credentials"},
		"swift":      {"password", "secretkey"},
		"oss":        {"accesskeysecret"},
	}
	for name, backend := range drivers.Names {
		ps, err := driver.Parameters(backend)
		if err != nil {
			t.Fatalf("Parameters(%s): %v", backend, err)
		}
		known := map[string]driver.ParamInfo{}
		for _, p := range ps {
			known[p.Name] = p
		}
		if _, ok := known["useragent"]; !ok {
			t.Errorf("%s: no useragent parameter", name)
		}
		for _, s := range secrets[name] {
			if !known[s].Secret {
				t.Errorf("%s: parameter %s is not marked secret", name, s)
			}
		}
		var secret []string
		for _, p := range ps {
			if p.Secret {
				secret = append(secret, p.Name)
			}
		}
		if len(secret) != len(secrets[name]) {
			t.Errorf("%s: secret parameters %q, want %q", name, secret, secrets[name])
		}
	}
}

// distributionParams are the parameters Distribution v3.1.2's own drivers
// read (registry/storage/driver/*), so that a config.yml written for them
// works with stowage's backends; for swift and oss, which v3 dropped, those
// of Distribution 2.x's drivers (swift's Parameters struct, the keys oss's
// FromParameters reads) and the useragent the registry adds to every
// storage block.
var distributionParams = map[string][]string{
	"filesystem": {"rootdirectory", "maxthreads", "useragent"},
	"s3": {"accesskey", "secretkey", "sessiontoken", "region", "regionendpoint", "forcepathstyle", "bucket",
		"encrypt", "keyid", "secure", "skipverify", "v4auth", "chunksize", "multipartcopychunksize",
		"multipartcopymaxconcurrency", "multipartcopythresholdsize", "rootdirectory", "storageclass",
		"useragent", "objectacl", "usedualstack", "accelerate", "loglevel", "redirectendpoint"},
	"gcs": {"bucket", "keyfile", "credentials", "rootdirectory", "chunksize", "maxconcurrency", "useragent"},
	"azure": {"accountname", "accountkey", "container", "connectionstring", "credentials", "realm",
		"rootdirectory", "serviceurl", "max_retries", "retry_delay", "skipverify", "useragent"},
	"swift": {"username", "password", "authurl", "tenant", "tenantid", "domain", "domainid", "tenantdomain",
		"tenantdomainid", "trustid", "region", "authversion", "container", "prefix", "endpointtype",
		"insecureskipverify", "chunksize", "secretkey", "accesskey", "tempurlcontainerkey", "tempurlmethods", "useragent"},
	"oss": {"accesskeyid", "accesskeysecret", "region", "endpoint", "internal", "bucket", "encrypt", "secure",
		"chunksize", "rootdirectory", "useragent"},
}

// notSupported are Distribution parameters stowage rejects, with the
// reason; the README lists them.
var notSupported = map[string]string{
	"s3/usefipsendpoint": "not implemented yet: the FIPS endpoint variant of the SDK's resolver",
}

// TestDistributionParametersKnown checks that each backend knows every
// parameter Distribution's driver of the same name reads, but for the
// documented exceptions.
func TestDistributionParametersKnown(t *testing.T) {
	for name, keys := range distributionParams {
		ps, err := driver.Parameters(drivers.Names[name])
		if err != nil {
			t.Fatal(err)
		}
		known := map[string]bool{}
		for _, p := range ps {
			known[p.Name] = true
		}
		for _, k := range keys {
			if !known[k] {
				t.Errorf("%s: Distribution's parameter %s is unknown to stowage", name, k)
			}
		}
		for k := range notSupported {
			if n, key, _ := strings.Cut(k, "/"); n == name && known[key] {
				t.Errorf("%s: %s is supported now; remove it from notSupported and the README", name, key)
			}
		}
	}
}
