package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stowage/stowage/driver"
)

// TestMain lets the test binary stand in for the stowage binary when check
// re-executes itself (os.Executable) as the child of the cross-process
// resume case.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childCommand {
		a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ()}
		os.Exit(a.main(context.Background(), os.Args[1:]))
	}
	os.Exit(m.Run())
}

type result struct {
	stdout, stderr string
	code           int
}

// stowage runs one command line in-process with the given environment
// (nothing of the test's own environment leaks in) and standard input.
func stowage(t *testing.T, environ []string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, environ: environ}
	code := a.main(t.Context(), args)
	return result{out.String(), errb.String(), code}
}

func fsArgs(dir string) []string {
	return []string{"--driver", "filesystem", "--param", "rootdirectory=" + dir}
}

func TestParseConfigRegistryStyle(t *testing.T) {
	cfg, err := parseConfig([]byte(`
version: 0.1
log: {level: info}
http: {addr: ":5000"}
storage:
  filesystem:
    rootdirectory: /var/lib/registry
    maxthreads: 50
  maintenance:
    uploadpurging: {enabled: true, age: 168h}
  cache: {blobdescriptor: inmemory}
  redirect: {disable: true}
  delete: {enabled: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Driver != "filesystem" || cfg.Params["rootdirectory"] != "/var/lib/registry" || cfg.Params["maxthreads"] != 50 || len(cfg.Params) != 2 {
		t.Fatalf("got %+v", cfg)
	}
}

func TestParseConfigPlain(t *testing.T) {
	cfg, err := parseConfig([]byte("driver: filesystem\nparameters:\n  rootdirectory: /srv/blobs\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Driver != "filesystem" || cfg.Params["rootdirectory"] != "/srv/blobs" {
		t.Fatalf("got %+v", cfg)
	}
	cfg, err = parseConfig([]byte("driver: filesystem\n"))
	if err != nil || cfg.Driver != "filesystem" || len(cfg.Params) != 0 {
		t.Fatalf("driver only: %+v, %v", cfg, err)
	}
	// A storage section with no parameters.
	cfg, err = parseConfig([]byte("storage:\n  inmemory:\n"))
	if err != nil || cfg.Driver != "inmemory" || len(cfg.Params) != 0 {
		t.Fatalf("empty driver section: %+v, %v", cfg, err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"two drivers", "storage:\n  s3: {}\n  filesystem: {}\n", "more than one driver (filesystem, s3)"},
		{"no driver", "storage:\n  delete: {enabled: true}\n", "names no driver"},
		{"storage not a map", "storage: filesystem\n", "not a map"},
		{"params not a map", "storage:\n  filesystem: [a, b]\n", "not a map of parameters"},
		{"neither shape", "http: {addr: x}\n", "want storage:"},
		{"plain unknown key", "driver: filesystem\nparams: {}\n", `unknown key "params"`},
		{"plain driver not a string", "driver: {a: b}\n", "not a driver name"},
		{"empty", "", "empty file"},
		{"bad yaml", "storage:\n  s3: {secretkey: 'hunter2\n", "not valid YAML"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseConfig([]byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error echoes a secret: %v", err)
			}
		})
	}
}

func TestConfigSources(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	file := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(file, []byte("storage:\n  filesystem:\n    rootdirectory: "+root+"\n    maxthreads: 30\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cf := configFlags{file: file}
	cfg, ok, err := cf.load([]string{"STOWAGE_PARAM_MAXTHREADS=40"})
	if err != nil || !ok {
		t.Fatalf("load: %v %v", ok, err)
	}
	if v, _ := cfg.get("maxthreads"); v != "40" {
		t.Fatalf("environment does not override the file: maxthreads=%v", v)
	}
	cf.params = paramFlags{"MaxThreads=60"}
	cfg, _, err = cf.load([]string{"STOWAGE_PARAM_MAXTHREADS=40"})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := cfg.get("maxthreads"); v != "60" || len(cfg.Params) != 2 {
		t.Fatalf("--param does not override the environment: %v", cfg.Params)
	}
	// $STOWAGE_CONFIG stands in for --config.
	cf = configFlags{}
	cfg, ok, err = cf.load([]string{EnvConfig + "=" + file})
	if err != nil || !ok || cfg.Driver != "filesystem" {
		t.Fatalf("%s: %+v %v %v", EnvConfig, cfg, ok, err)
	}
	// Nothing configured.
	if _, ok, err := (&configFlags{}).load(nil); ok || err != nil {
		t.Fatalf("empty configuration: ok=%v err=%v", ok, err)
	}
	// The configuration opens: put and cat through it.
	if r := stowage(t, nil, "x", "put", "--config", file, "-", "/f"); r.code != 0 {
		t.Fatalf("put with --config: %+v", r)
	}
	if r := stowage(t, []string{EnvConfig + "=" + file}, "", "cat", "/f"); r.code != 0 || r.stdout != "x" {
		t.Fatalf("cat with $%s: %+v", EnvConfig, r)
	}
}

func TestConfigErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("storage:\n  filesystem:\n    rootdirectory: "+dir+"\n    secretkey: hunter2\n"), 0o600)
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"relative root", nil, []string{"ls", "--driver", "filesystem", "--param", "rootdirectory=relative"}, "rootdirectory"},
		{"bounds", nil, []string{"ls", "--driver", "filesystem", "--param", "rootdirectory=" + dir, "--param", "maxthreads=1"}, "maxthreads"},
		{"unknown driver", nil, []string{"ls", "--driver", "nosuch"}, `unknown storage driver "nosuch"`},
		{"unknown param", nil, []string{"stat", "--config", bad, "/"}, `unknown parameter "secretkey"`},
		{"param without =", nil, []string{"ls", "--driver", "filesystem", "--param", "hunter2"}, "--param number 1 is not key=value"},
		{"no driver", nil, []string{"ls", "--param", "secretkey=hunter2"}, "no driver"},
		{"no store", nil, []string{"ls"}, "no store configured"},
		{"missing file", nil, []string{"ls", "--config", filepath.Join(dir, "missing.yml")}, "missing.yml"},
		{"driver mismatch", nil, []string{"ls", "--config", bad, "--driver", "s3"}, "does not match"},
		{"env secret", []string{"STOWAGE_PARAM_SECRETKEY=hunter2"}, []string{"ls", "--driver", "filesystem", "--param", "rootdirectory=" + dir}, `unknown parameter "secretkey"`},
		{"bad flag", nil, []string{"ls", "--nosuchflag"}, "flag provided but not defined"},
		{"too many args", nil, []string{"stat", "--driver", "filesystem", "--param", "rootdirectory=" + dir, "/a", "/b"}, "want arguments"},
		{"bad path", nil, []string{"stat", "--driver", "filesystem", "--param", "rootdirectory=" + dir, "a//b"}, "not a store path"},
		{"bench chunksize unsupported", nil, []string{"bench", "--driver", "filesystem", "--param", "rootdirectory=" + dir, "--chunksize", "5MiB", "--sizes", "1KiB"}, `unknown parameter "chunksize"`},
		{"zero size", nil, []string{"bench", "--sizes", "1KiB,0"}, "--sizes: sizes must be positive"},
		{"bad flag list", nil, []string{"bench", "--sizes", "12XB"}, "unknown unit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := stowage(t, c.env, "", c.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, c.want) {
				t.Fatalf("stderr does not say %q:\n%s", c.want, r.stderr)
			}
			if strings.Contains(r.stderr, "hunter2") || strings.Contains(r.stdout, "hunter2") {
				t.Fatalf("a secret is echoed:\n%s", r.stderr)
			}
			// A flag error is followed by the usage; others are one line.
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); !strings.HasPrefix(c.name, "bad flag") && n > 0 {
				t.Fatalf("want one line of error, got:\n%s", r.stderr)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	if r := stowage(t, nil, "", "help"); r.code != 0 || !strings.Contains(r.stdout, "stowage bench") || strings.Contains(r.stdout, childCommand) {
		t.Fatalf("help: %+v", r)
	}
	for _, cmd := range []string{"bench", "check", "ls", "stat", "cat", "put", "rm", "mv", "purge-uploads"} {
		r := stowage(t, nil, "", "help", cmd)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: stowage "+cmd) || !strings.Contains(r.stdout, "-config") {
			t.Fatalf("help %s: %+v", cmd, r)
		}
		if r := stowage(t, nil, "", cmd, "-h"); r.code != 0 || !strings.Contains(r.stderr, "Usage: stowage "+cmd) {
			t.Fatalf("%s -h: %+v", cmd, r)
		}
	}
	if r := stowage(t, nil, ""); r.code != 2 {
		t.Fatalf("no command: %+v", r)
	}
	if r := stowage(t, nil, "", "frobnicate"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %+v", r)
	}
}

func TestFileCommands(t *testing.T) {
	dir := t.TempDir()
	fa := fsArgs(dir)
	run := func(stdin string, args ...string) result {
		t.Helper()
		return stowage(t, nil, stdin, append(args[:1:1], append(fa, args[1:]...)...)...)
	}
	must := func(r result) result {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		return r
	}
	local := filepath.Join(t.TempDir(), "local.txt")
	os.WriteFile(local, []byte("hello, world"), 0o644)
	must(run("", "put", local, "/a/b.txt"))
	must(run("from stdin", "put", "-", "/a/c"))
	must(run("one arg", "put", "-", "/a/d/e"))
	if r := must(run("", "ls")); r.stdout != "/a/\n" {
		t.Fatalf("ls: %q", r.stdout)
	}
	if r := must(run("", "ls", "/a")); r.stdout != "/a/b.txt\n/a/c\n/a/d/\n" {
		t.Fatalf("ls /a: %q", r.stdout)
	}
	if r := must(run("", "ls", "/", "-r")); r.stdout != "/a/\n/a/b.txt\n/a/c\n/a/d/\n/a/d/e\n" {
		t.Fatalf("ls -r: %q", r.stdout)
	}
	r := must(run("", "ls", "-l", "/a"))
	if !regexp.MustCompile(`(?m)^ +12  \d{4}-\d\d-\d\dT\S+  /a/b.txt$`).MatchString(r.stdout) || !strings.Contains(r.stdout, "/a/d/") {
		t.Fatalf("ls -l: %q", r.stdout)
	}
	if r := must(run("", "ls", "-l", "/a/b.txt")); !strings.HasSuffix(r.stdout, "  /a/b.txt\n") || !strings.Contains(r.stdout, " 12  ") {
		t.Fatalf("ls -l of a file: %q", r.stdout)
	}
	if r := run("", "ls", "/nosuch"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("ls of a missing folder: %+v", r)
	}
	if r := must(run("", "stat", "/a/b.txt")); !strings.Contains(r.stdout, "kind: file\nsize: 12\n") {
		t.Fatalf("stat: %q", r.stdout)
	}
	if r := must(run("", "stat", "/a")); !strings.Contains(r.stdout, "kind: folder") {
		t.Fatalf("stat folder: %q", r.stdout)
	}
	if r := must(run("", "cat", "/a/b.txt")); r.stdout != "hello, world" {
		t.Fatalf("cat: %q", r.stdout)
	}
	if r := must(run("", "cat", "--offset", "7", "/a/c")); r.stdout != "din" {
		t.Fatalf("cat --offset: %q", r.stdout)
	}
	if r := must(run("", "cat", "/a/d/e")); r.stdout != "one arg" {
		t.Fatalf("cat of stdin put: %q", r.stdout)
	}
	must(run("", "mv", "/a/b.txt", "/z"))
	if r := must(run("", "cat", "/z")); r.stdout != "hello, world" {
		t.Fatalf("cat after mv: %q", r.stdout)
	}
	must(run("", "rm", "-r", "/a"))
	if r := must(run("", "ls", "-r")); r.stdout != "/z\n" {
		t.Fatalf("ls after rm: %q", r.stdout)
	}
	r = run("", "cat", "/a/c")
	if r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("cat of a removed file: %+v", r)
	}
	if r := run("", "rm", "/nothing"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("rm of a missing file: %+v", r)
	}
	if r := run("", "put", filepath.Join(dir, "nosuchfile"), "/x"); r.code != 1 {
		t.Fatalf("put of a missing local file: %+v", r)
	}
	if r := must(run("", "purge-uploads", "--older-than", "1h")); !strings.Contains(r.stdout, "removed 0 uploads") {
		t.Fatalf("purge-uploads: %q", r.stdout)
	}
}

// noPurge is a backend without driver.UploadPurger.
type noPurge struct{ driver.Backend }

func TestPurgeUnsupported(t *testing.T) {
	name := "test-nopurge"
	driver.Register(name, func(ctx context.Context, p driver.Params) (driver.Driver, error) {
		d, err := driver.Open(ctx, "filesystem", p)
		if err != nil {
			return nil, err
		}
		return driver.New(noPurge{driver.BackendOf(d)}), nil
	})
	r := stowage(t, nil, "", "purge-uploads", "--driver", name, "--param", "rootdirectory="+t.TempDir())
	if r.code != 1 || !strings.Contains(r.stderr, "UploadPurger") {
		t.Fatalf("purge-uploads on a backend without purger: %+v", r)
	}
}

func TestGenerator(t *testing.T) {
	const seed, size = 42, 1<<16 + 13
	whole := make([]byte, size)
	fillAt(whole, seed, 0)
	// Any offset gives the same bytes.
	for _, off := range []int{0, 1, 7, 8, 9, 1000, size - 5} {
		for _, n := range []int{0, 1, 3, 8, 17, 100} {
			n = min(n, size-off)
			part := make([]byte, n)
			fillAt(part, seed, int64(off))
			if !bytes.Equal(part, whole[off:off+n]) {
				t.Fatalf("fillAt(off %d, n %d) differs", off, n)
			}
		}
	}
	// The reader gives the same bytes in pieces of any size.
	g := &genReader{seed: seed, size: size}
	got, err := io.ReadAll(io.LimitReader(struct{ io.Reader }{g}, size+10))
	if err != nil || !bytes.Equal(got, whole) {
		t.Fatalf("genReader: %d bytes, %v", len(got), err)
	}
	if genCRC(seed, size) != crc32.Checksum(whole, castagnoli) {
		t.Fatal("genCRC differs from the CRC of the data")
	}
	other := make([]byte, 64)
	fillAt(other, seed+1, 0)
	if bytes.Equal(other, whole[:64]) {
		t.Fatal("another seed gives the same data")
	}
}

func TestRequestCounter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	var c reqCounter
	ctx := driver.WithTransport(t.Context(), c.wrap)
	if c.hooked.Load() {
		t.Fatal("hooked before any backend built a client")
	}
	client := &http.Client{Transport: driver.Transport(ctx, http.DefaultTransport)}
	for range 3 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if !c.hooked.Load() || c.n.Load() != 3 {
		t.Fatalf("hooked=%v count=%d, want true 3", c.hooked.Load(), c.n.Load())
	}
}

// benchStoreGone checks that the bench removed its temporary folder, named
// on its first line of stderr.
func benchStoreGone(t *testing.T, stderr string) {
	t.Helper()
	m := regexp.MustCompile(`filesystem at (\S+),`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("stderr does not name the folder: %q", stderr)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Fatalf("bench left its folder %s behind (%v)", m[1], err)
	}
}

func TestBenchJSON(t *testing.T) {
	r := stowage(t, nil, "", "bench", "--sizes", "100KiB,1MiB", "--writes", "16KiB,1MiB", "--segment", "256KiB", "--runs", "3", "--baseline", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	benchStoreGone(t, r.stderr)
	var rows []benchRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if len(rows) != 8 {
		t.Fatalf("%d rows, want 8 (2 sizes × 2 writes × 2 patterns)", len(rows))
	}
	i := 0
	for _, size := range []int64{100 << 10, 1 << 20} {
		for _, ws := range []int64{16 << 10, 1 << 20} {
			for _, pat := range []string{"plain", "patch"} {
				row := rows[i]
				i++
				if row.Driver != "filesystem" || row.Size != size || row.WriteSize != ws || row.Pattern != pat || row.Runs != 3 || row.ChunkSize != 0 {
					t.Fatalf("row %d: %+v", i, row)
				}
				if !(row.UploadMBps > 0) || !(row.ReadMBps > 0) || row.PeakHeapBytes < 0 || row.PeakHeapBytes > 64<<20 {
					t.Fatalf("row %d has insane figures: %+v", i, row)
				}
				if row.UploadRequests != nil || row.ReadRequests != nil {
					t.Fatalf("row %d counts requests of a backend without HTTP: %+v", i, row)
				}
				if row.RawUploadMBps == nil || !(*row.RawUploadMBps > 0) || row.Ratio == nil || !(*row.Ratio > 0) {
					t.Fatalf("row %d lacks the baseline: %+v", i, row)
				}
			}
		}
	}
}

func TestBenchCSVAndTable(t *testing.T) {
	r := stowage(t, nil, "", "bench", "--sizes", "64KiB", "--writes", "8KiB", "--csv")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, r.stdout)
	}
	if len(recs) != 3 || recs[0][0] != "driver" || len(recs[0]) != 15 || recs[0][11] != "upload_min_mbps" {
		t.Fatalf("CSV: %q", recs)
	}
	for _, rec := range recs[1:] {
		if rec[0] != "filesystem" || rec[1] != "65536" || rec[3] != "8192" || rec[8] != "" {
			t.Fatalf("CSV row %q", rec)
		}
		for _, col := range []int{6, 7} {
			if v, err := strconv.ParseFloat(rec[col], 64); err != nil || !(v > 0) {
				t.Fatalf("CSV row %q: column %s is %q", rec, recs[0][col], rec[col])
			}
		}
	}
	if rec := recs[2]; rec[4] != "patch" {
		t.Fatalf("second row %q is not the patch pattern", rec)
	}

	r = stowage(t, nil, "", "bench", "--sizes", "64KiB", "--writes", "8KiB", "--patterns", "patch", "--baseline")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[2], "ratio driver/raw upload: median ") {
		t.Fatalf("table: %q", r.stdout)
	}
	head, row := strings.Fields(lines[0]), strings.Fields(lines[1])
	if head[0] != "size" || !strings.Contains(lines[0], "ratio") {
		t.Fatalf("table header %q", lines[0])
	}
	// size chunk write pattern up spread read requests peak(2 fields) raw ratio
	if len(row) != 12 || row[0] != "64KiB" || row[1] != "-" || row[2] != "8KiB" || row[3] != "patch" || row[7] != "-" ||
		!regexp.MustCompile(`^\d+\.\d-\d+\.\d$`).MatchString(row[5]) {
		t.Fatalf("table row %q", lines[1])
	}
	if v, err := strconv.ParseFloat(row[11], 64); err != nil || !(v > 0) {
		t.Fatalf("table ratio %q", row[11])
	}
	if strings.Contains(r.stderr, "\r") {
		t.Fatal("progress bar drawn on a stderr that is not a terminal")
	}
}

func TestBenchConfiguredStore(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o644)
	r := stowage(t, nil, "", append([]string{"bench", "--sizes", "10KiB", "--writes", "4KiB", "--patterns", "plain", "--json"}, fsArgs(dir)...)...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	// The bench works in its own folder and removes it; the store's other
	// files stay.
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "~") {
			names = append(names, e.Name())
		}
	}
	if len(names) != 1 || names[0] != "keep" {
		t.Fatalf("store holds %v after the bench, want [keep]", names)
	}
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	if p := newProgressBar(&buf, 100, false); p != nil {
		t.Fatal("a bar when progress is off")
	}
	p := newProgressBar(&buf, 100, true)
	p.setLabel("1MiB upload")
	p.add(50)
	p.draw()
	p.finish()
	if s := buf.String(); !strings.Contains(s, " 50% 1MiB upload") || !strings.HasSuffix(s, "\r\x1b[K") {
		t.Fatalf("bar output %q", s)
	}
}

func TestCheckFilesystem(t *testing.T) {
	// The large cases run in the filesystem package's own conformance
	// test; here the command's plumbing is under test.
	args := []string{"check", "--large=false"}
	if testing.Short() {
		args = append(args, "--short")
	}
	r := stowage(t, nil, "", args...)
	if r.code != 0 {
		t.Fatalf("check failed (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	m := regexp.MustCompile(`(?m)^check: (\d+) passed, 0 failed, (\d+) skipped`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no summary:\n%s", r.stdout)
	}
	if n, _ := strconv.Atoi(m[1]); n < 40 {
		t.Fatalf("only %d cases passed:\n%s", n, r.stdout)
	}
	if !strings.Contains(r.stdout, "PASS  root/CrossProcessResume") || !strings.Contains(r.stdout, "PASS  prefix/CrossProcessResume") {
		t.Fatalf("the cross-process resume case did not pass:\n%s", r.stdout)
	}
	dir := regexp.MustCompile(`filesystem at (\S+),`).FindStringSubmatch(r.stdout)
	if dir == nil {
		t.Fatalf("no folder named:\n%s", r.stdout)
	}
	if _, err := os.Stat(dir[1]); !os.IsNotExist(err) {
		t.Fatalf("check left %s behind", dir[1])
	}
}

// brokenList is a filesystem backend whose List forgets the last entry.
type brokenList struct{ driver.Backend }

func (b brokenList) List(ctx context.Context, p string) ([]string, error) {
	l, err := b.Backend.List(ctx, p)
	if len(l) > 0 {
		l = l[:len(l)-1]
	}
	return l, err
}

func TestCheckReportsFailure(t *testing.T) {
	name := "test-brokenlist"
	driver.Register(name, func(ctx context.Context, p driver.Params) (driver.Driver, error) {
		d, err := driver.Open(ctx, "filesystem", p)
		if err != nil {
			return nil, err
		}
		return driver.New(brokenList{driver.BackendOf(d)}), nil
	})
	dir := t.TempDir()
	r := stowage(t, []string{"STOWAGE_SEED=12345"}, "", "check", "--short", "--run", "^root/List$", "--driver", name, "--param", "rootdirectory="+dir)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "seed 12345 ") {
		t.Fatalf("$STOWAGE_SEED not used:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "FAIL  root/List") || !strings.Contains(r.stdout, "ERROR:") || !strings.Contains(r.stdout, " passed, 1 failed, ") {
		t.Fatalf("output:\n%s", r.stdout)
	}
	// The check folder is gone; the configured root stays.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "stowage-check-") {
			t.Fatalf("check left %s in the store", e.Name())
		}
	}
}

// BenchmarkFillAt measures the data generator, which must stay far faster
// than any store (it runs inside the timed upload).
func BenchmarkFillAt(b *testing.B) {
	buf := make([]byte, 8<<20)
	b.SetBytes(int64(len(buf)))
	for i := 0; b.Loop(); i++ {
		fillAt(buf, 1, int64(i)*int64(len(buf)))
	}
}
