package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/filesystem"
)

func genBytes(seed uint64, n int64) []byte {
	b, _ := io.ReadAll(&genReader{seed: seed, size: n})
	return b
}

func TestCpLocalAndStore(t *testing.T) {
	dir := t.TempDir()
	fa := fsArgs(dir)
	run := func(stdin string, args ...string) result {
		t.Helper()
		return stowage(t, nil, stdin, append(args[:1:1], append(fa, args[1:]...)...)...)
	}
	local := filepath.Join(t.TempDir(), "blob")
	data := genBytes(1, 20<<20+123)
	os.WriteFile(local, data, 0o644)
	if r := run("", "cp", local, ":/a/blob"); r.code != 0 {
		t.Fatalf("cp local store: %+v", r)
	}
	back := filepath.Join(t.TempDir(), "sub", "back")
	if r := run("", "cp", ":/a/blob", back); r.code != 0 {
		t.Fatalf("cp store local: %+v", r)
	}
	if got, _ := os.ReadFile(back); !bytes.Equal(got, data) {
		t.Fatalf("round trip: %d bytes, want %d", len(got), len(data))
	}
	if r := run("", "cp", ":/a/blob", "-"); r.code != 0 || r.stdout != string(data) {
		t.Fatalf("cp store -: exit %d, %d bytes", r.code, len(r.stdout))
	}
	if r := run("from stdin", "cp", "-", ":/b"); r.code != 0 {
		t.Fatalf("cp - store: %+v", r)
	}
	if r := run("", "cat", "/b"); r.stdout != "from stdin" {
		t.Fatalf("cat after cp -: %q", r.stdout)
	}
	if r := run("", "cp", local, back); r.code != 2 || !strings.Contains(r.stderr, "both operands are local") {
		t.Fatalf("cp local local: %+v", r)
	}
	if r := run("", "cp", ":/a", back); r.code != 2 || !strings.Contains(r.stderr, "is a folder: use cp -r") {
		t.Fatalf("cp of a folder without -r: %+v", r)
	}
	if r := run("", "cp", local, "nosuch:/x"); r.code != 2 || !strings.Contains(r.stderr, `no store named "nosuch"`) {
		t.Fatalf("cp to an unknown store: %+v", r)
	}
}

// TestCpTreeBetweenStores copies a local tree into one store, then from
// that store to another named store (--store and stores: in a config
// file), then back to a local folder, and compares.
func TestCpTreeBetweenStores(t *testing.T) {
	srcDir := t.TempDir()
	files := map[string][]byte{"a/b.txt": []byte("bee"), "a/c/d": genBytes(2, 9<<20), "e": {}}
	for name, b := range files {
		p := filepath.Join(srcDir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o777)
		os.WriteFile(p, b, 0o644)
	}
	cfgDir := t.TempDir()
	one := filepath.Join(cfgDir, "one.yml")
	os.WriteFile(one, []byte("driver: filesystem\nparameters: {rootdirectory: "+t.TempDir()+"}\n"), 0o644)
	two := t.TempDir()
	multi := filepath.Join(cfgDir, "stores.yml")
	os.WriteFile(multi, []byte("stores:\n  two: {storage: {filesystem: {rootdirectory: "+two+"}}}\n"), 0o644)
	args := func(a ...string) []string {
		return append([]string{"cp", "--config", multi, "--store", "one=" + one}, a...)
	}
	if r := stowage(t, nil, "", args("-r", srcDir, "one:/x")...); r.code != 0 {
		t.Fatalf("cp -r local one: %+v", r)
	}
	if r := stowage(t, nil, "", args("-r", "--dry-run", "one:/x", "two:/y")...); r.code != 0 ||
		!strings.Contains(r.stdout, "would copy one:/x/a/c/d to two:/y/a/c/d (9437184 bytes)") ||
		!strings.Contains(r.stdout, "dry run: 3 files, 9437187 bytes would be copied") {
		t.Fatalf("cp -r --dry-run: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(two, "y")); !os.IsNotExist(err) {
		t.Fatalf("a dry run copied: %v", err)
	}
	if r := stowage(t, nil, "", args("-r", "one:/x", "two:/y")...); r.code != 0 {
		t.Fatalf("cp -r one two: %+v", r)
	}
	out := t.TempDir()
	if r := stowage(t, nil, "", args("-r", "two:/y", out)...); r.code != 0 {
		t.Fatalf("cp -r two local: %+v", r)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v; want %d", name, len(got), err, len(want))
		}
	}
}

// cancelAfter is a standard input that cancels the command's context once
// it has given n bytes, like a Ctrl-C in the middle of a cp.
type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
		return 0, context.Canceled
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	k, err := c.r.Read(p)
	c.n -= int64(k)
	return k, err
}

// TestCpInterruptAndResume: a cp interrupted mid-way keeps what the
// destination accepted (its upload is closed, not cancelled), and --resume
// sends only the rest; the committed file is exact.
func TestCpInterruptAndResume(t *testing.T) {
	dir := t.TempDir()
	data := genBytes(3, 30<<20+7)
	local := filepath.Join(t.TempDir(), "blob")
	os.WriteFile(local, data, 0o644)

	// Interrupted: standard input stops after 12 MiB with a Ctrl-C.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr bytes.Buffer
	a := &app{stdin: &cancelAfter{r: bytes.NewReader(data), n: 12 << 20, cancel: cancel}, stdout: io.Discard, stderr: &stderr}
	code := a.main(ctx, append([]string{"cp"}, append(fsArgs(dir), "-", ":/blob")...))
	if code != 1 || !regexp.MustCompile(`\d+ bytes of :/blob accepted; run the same cp with --resume`).MatchString(stderr.String()) {
		t.Fatalf("interrupted cp: exit %d: %s", code, stderr.String())
	}
	d, err := filesystem.New(t.Context(), filesystem.Config{RootDirectory: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(t.Context(), "/blob"); err == nil {
		t.Fatal("an interrupted cp committed the file")
	}
	w, err := d.Writer(t.Context(), "/blob", true)
	if err != nil {
		t.Fatalf("the interrupted upload is gone: %v", err)
	}
	accepted := w.Size()
	w.Close()
	if accepted != 12<<20 {
		t.Fatalf("accepted %d bytes, want the 12 MiB read before the interrupt", accepted)
	}
	// Resume from the local file: only the rest is sent.
	r := stowage(t, nil, "", append([]string{"cp", "--resume"}, append(fsArgs(dir), local, ":/blob")...)...)
	if r.code != 0 {
		t.Fatalf("cp --resume: %+v", r)
	}
	got, err := d.GetContent(t.Context(), "/blob")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after --resume: %d bytes, %v; want %d", len(got), err, len(data))
	}
	// A --resume onto a destination longer than the source refuses.
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, data[:100], 0o644)
	if r := stowage(t, nil, "", append([]string{"cp", "--resume"}, append(fsArgs(dir), short, ":/blob")...)...); r.code != 1 || !strings.Contains(r.stderr, "not an interrupted copy") {
		t.Fatalf("--resume onto a longer destination: %+v", r)
	}
	if got, _ := d.GetContent(t.Context(), "/blob"); !bytes.Equal(got, data) {
		t.Fatal("a refused --resume changed the file")
	}
}

// TestCpFilesystemToS3 copies a tree from a filesystem store to s3 on
// MinIO and back: store to store across backends.
func TestCpFilesystemToS3(t *testing.T) {
	const p = "STOWAGE_S3_MINIO_"
	env := conformance.RequireEnv(t, p+"ENDPOINT", p+"ACCESSKEY", p+"SECRETKEY", p+"BUCKET")
	fsRoot := t.TempDir()
	d, _ := filesystem.New(t.Context(), filesystem.Config{RootDirectory: fsRoot})
	want := map[string][]byte{"/t/a": genBytes(4, 11<<20), "/t/b/c": []byte("c")}
	for k, v := range want {
		if err := d.PutContent(t.Context(), k, v); err != nil {
			t.Fatal(err)
		}
	}
	cfgDir := t.TempDir()
	root := "/cp-test-" + strings.ReplaceAll(t.Name(), "/", "-")
	s3cfg := filepath.Join(cfgDir, "s3.yml")
	os.WriteFile(s3cfg, []byte("storage:\n  s3:\n    bucket: "+env[p+"BUCKET"]+"\n    regionendpoint: "+env[p+"ENDPOINT"]+
		"\n    rootdirectory: "+root+"\n    chunksize: 5MiB\n"), 0o644)
	fscfg := filepath.Join(cfgDir, "fs.yml")
	os.WriteFile(fscfg, []byte("driver: filesystem\nparameters: {rootdirectory: "+fsRoot+"}\n"), 0o644)
	environ := []string{"STOWAGE_PARAM_ACCESSKEY=" + env[p+"ACCESSKEY"], "STOWAGE_PARAM_SECRETKEY=" + env[p+"SECRETKEY"]}
	// The STOWAGE_PARAM_* variables belong to the default store: name s3
	// as the default (:/path) and the filesystem with --store.
	r := stowage(t, environ, "", "cp", "--config", s3cfg, "--store", "fs="+fscfg, "-r", "fs:/t", ":/u")
	if r.code != 0 {
		t.Fatalf("cp -r fs s3: %+v", r)
	}
	r = stowage(t, environ, "", "cp", "--config", s3cfg, "--store", "fs="+fscfg, "-r", ":/u", "fs:/back")
	if r.code != 0 {
		t.Fatalf("cp -r s3 fs: %+v", r)
	}
	for k, v := range want {
		got, err := d.GetContent(t.Context(), "/back"+strings.TrimPrefix(k, "/t"))
		if err != nil || !bytes.Equal(got, v) {
			t.Errorf("%s: %d bytes, %v", k, len(got), err)
		}
	}
	t.Cleanup(func() {
		stowage(t, environ, "", "rm", "--config", s3cfg, "-r", "/u")
	})
}
