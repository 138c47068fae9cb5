package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stowage/stowage/driver"
)

// notSecret lists the parameters whose names look like credentials but
// are not, each with the reason. Any other credential-like name must be
// marked secret:"true" in its backend's Config.
var notSecret = map[string]string{
	"s3/accesskey":              "an access key ID is an identifier: AWS sends it in clear in every signed request's Authorization header",
	"swift/accesskey":           "HP Cloud's temp URL access key is an identifier: every temp URL carries it in clear (tenant:accesskey:signature); secretkey signs",
	"swift/tempurlcontainerkey": "a bool that says where the temp URL key is kept (on the container, not the account); the key itself is secretkey",
}

// credentialLike reports whether a parameter name looks like it holds a
// credential.
func credentialLike(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"secret", "password", "passwd", "token", "credential", "connectionstring", "privatekey", "sas"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return strings.HasSuffix(n, "key")
}

// productBackends lists the registered backends without the ones this
// package's other tests register (named "test-...", with no configuration).
func productBackends() []string {
	var out []string
	for _, name := range driver.Registered() {
		if !strings.HasPrefix(name, "test-") {
			out = append(out, name)
		}
	}
	return out
}

// TestCredentialParametersAreSecret walks every registered backend's
// parameters (its Config, as driver.Parameters reports it) and fails on a
// credential-like one that is not marked secret: Decode would print its
// value in a config error.
func TestCredentialParametersAreSecret(t *testing.T) {
	names := productBackends()
	if len(names) < 5 {
		t.Fatalf("only %d backends registered: %v", len(names), names)
	}
	checked := 0
	for _, name := range names {
		params, err := driver.Parameters(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range params {
			if !credentialLike(p.Name) {
				continue
			}
			checked++
			if _, ok := notSecret[name+"/"+p.Name]; ok {
				if p.Secret {
					t.Errorf("%s: %s is marked secret but listed in notSecret", name, p.Name)
				}
				continue
			}
			if !p.Secret {
				t.Errorf("%s: parameter %s looks like a credential but is not marked secret:\"true\"", name, p.Name)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d credential-like parameters found: the walk missed the backends' configs", checked)
	}
}

// The sentinels fed through the secrets: a plain string and one that is
// valid base64 (so account keys get past their decoding).
const (
	sentinel    = "sEnTiNeL-s3cr3t-4f1d"
	sentinelB64 = "c0VuVGlOZUwtczNjcjN0LWI2NA=="
)

// TestSecretsNeverInErrors feeds sentinel secrets through every config
// error path of every registered backend (unknown parameter, missing or
// out-of-range parameter, a secret of the wrong type or a malformed one,
// an unreachable endpoint, a first request that fails) and fails if an
// error ever shows one.
func TestSecretsNeverInErrors(t *testing.T) {
	dir := t.TempDir()
	for _, name := range productBackends() {
		params, err := driver.Parameters(name)
		if err != nil {
			t.Fatal(err)
		}
		var secrets []driver.ParamInfo
		for _, p := range params {
			if p.Secret {
				secrets = append(secrets, p)
			}
		}
		if len(secrets) == 0 {
			continue
		}
		base := baseParams(name, params, dir)
		for _, s := range secrets {
			for _, val := range []string{sentinel, sentinelB64} {
				// A map secret (credentials) is tried in each shape a backend
				// takes, with the sentinel in every credential field.
				values := []any{val}
				if s.Type == "map" {
					values = []any{
						map[string]any{"type": "service_account", "private_key": val, "client_email": "a@b.c",
							"project_id": "p", "token_uri": "http://127.0.0.1:1/token"},
						map[string]any{"type": "client_secret", "tenantid": "t", "clientid": "c", "secret": val},
						map[string]any{"type": "shared_key", "accountname": "devstoreaccount1", "accountkey": val},
					}
				}
				cases := map[string]driver.Params{
					"wrong type":       with(base, s.Name, []int{1, 2}),
					"secret as string": with(base, s.Name, val),
				}
				for i, value := range values {
					tag := fmt.Sprintf(" (shape %d)", i)
					cases["unknown parameter"+tag] = with(base, s.Name, value, "nosuchparameter", "x")
					cases["as given"+tag] = with(base, s.Name, value)
					if has(params, "chunksize") {
						cases["chunksize out of range"+tag] = with(base, s.Name, value, "chunksize", "1B")
					}
					if has(params, "maxconcurrency") {
						cases["maxconcurrency out of range"+tag] = with(base, s.Name, value, "maxconcurrency", -3)
					}
					for _, p := range params {
						if p.Required && p.Name != s.Name {
							m := with(base, s.Name, value)
							delete(m, p.Name)
							cases["missing "+p.Name+tag] = m
						}
					}
				}
				for what, ps := range cases {
					checkNoSecret(t, name, s.Name+": "+what, ps, val)
				}
			}
		}
	}
}

// baseParams fills a backend's required parameters, and points every
// endpoint at a closed loopback port so nothing leaves the machine.
func baseParams(name string, params []driver.ParamInfo, dir string) driver.Params {
	ps := driver.Params{}
	for _, p := range params {
		switch {
		case p.Name == "rootdirectory" && p.Required:
			ps[p.Name] = filepath.Join(dir, name)
		case p.Name == "regionendpoint", p.Name == "endpoint", p.Name == "serviceurl", p.Name == "authurl":
			ps[p.Name] = "http://127.0.0.1:1"
		case p.Name == "region":
			ps[p.Name] = "us-east-1"
		case p.Name == "secretkey" && name == "s3":
			ps[p.Name] = "another-secret" // so a sessiontoken gets past Decode
		case p.Name == "accesskey" && !p.Secret:
			ps[p.Name] = "AKIDEXAMPLE"
		case p.Name == "accountname":
			ps[p.Name] = "devstoreaccount1"
		case p.Name == "maxretries", p.Name == "max_retries":
			ps[p.Name] = 0
		case p.Required:
			ps[p.Name] = "stowage-sentinel"
		}
	}
	return ps
}

// with returns a copy of base with the key/value pairs set.
func with(base driver.Params, kv ...any) driver.Params {
	m := driver.Params{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func has(params []driver.ParamInfo, name string) bool {
	for _, p := range params {
		if p.Name == name {
			return true
		}
	}
	return false
}

// checkNoSecret opens the backend with ps and, when that works, makes a
// first request; neither error may show the secret (nor its base64 text
// decoded, nor a prefix long enough to identify it).
func checkNoSecret(t *testing.T, name, what string, ps driver.Params, secret string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var errs []error
	d, err := driver.Open(ctx, name, ps)
	errs = append(errs, err)
	if err == nil {
		_, err = d.Stat(ctx, "/a")
		errs = append(errs, err)
		_, err = d.GetContent(ctx, "/a")
		errs = append(errs, err)
		if w, err := d.Writer(ctx, "/a", false); err == nil {
			_, err = w.Write([]byte("x"))
			errs = append(errs, err, w.Commit(ctx))
			w.Close()
		} else {
			errs = append(errs, err)
		}
	}
	for _, err := range errs {
		if err == nil {
			continue
		}
		for _, shown := range []string{err.Error(), errString(err)} {
			if strings.Contains(shown, secret) || strings.Contains(shown, secret[:12]) {
				t.Errorf("%s, %s: an error shows the secret: %s", name, what, shown)
			}
		}
	}
}

// errString renders an error the way a log line with %+v-like detail
// would: every error in its chain.
func errString(err error) string {
	var b strings.Builder
	for e := err; e != nil; e = errors.Unwrap(e) {
		b.WriteString(e.Error())
		b.WriteString(" | ")
	}
	return b.String()
}

// TestCLISecretsNeverShown runs the command with a secret given through
// a STOWAGE_PARAM_ variable next to a mistake, and checks what it prints.
func TestCLISecretsNeverShown(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "s3.yaml")
	if err := os.WriteFile(cfg, []byte("storage:\n  s3:\n    bucket: b\n    region: us-east-1\n    regionendpoint: http://127.0.0.1:1\n    maxretries: 0\n    accesskey: AKIDEXAMPLE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, env := range [][]string{
		{"STOWAGE_PARAM_SECRETKEY=" + sentinel, "STOWAGE_PARAM_CHUNKSIZE=1B"},
		{"STOWAGE_PARAM_SECRETKEY=" + sentinel, "STOWAGE_PARAM_NOSUCH=1"},
		{"STOWAGE_PARAM_SECRETKEY=" + sentinel, "STOWAGE_PARAM_ACCESSKEY=AKIDEXAMPLE"},
		{"STOWAGE_PARAM_SECRETKEY=" + sentinel, "STOWAGE_PARAM_SESSIONTOKEN=" + sentinel},
		{"STOWAGE_PARAM_SECRETKEY=" + sentinel, "STOWAGE_PARAM_SECRETKEY2=" + sentinel},
	} {
		for _, args := range [][]string{{"ls", "/"}, {"stat", "/a"}, {"check", "--short", "--run", "^root/PutGet"}} {
			r := stowage(t, env, "", append([]string{args[0], "--config", cfg}, args[1:]...)...)
			if r.code == 0 {
				t.Errorf("%v with %v: exit 0, want a failure", args, env)
			}
			if strings.Contains(r.stdout+r.stderr, sentinel) || strings.Contains(r.stdout+r.stderr, sentinel[:12]) {
				t.Errorf("%v with %v printed the secret:\n%s%s", args, env, r.stdout, r.stderr)
			}
		}
	}
}
