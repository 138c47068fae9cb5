package main

import (
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stowage/stowage/conformance"
)

// TestBenchPlotAndCompare sweeps two filesystem stores (--compare) and
// checks that the plot holds a line per store, blob size and pattern, and a
// dashed baseline line per store and blob size, in SVG and in PNG.
func TestBenchPlotAndCompare(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "disk2.yml")
	os.WriteFile(other, []byte("driver: filesystem\nparameters: {rootdirectory: "+t.TempDir()+"}\n"), 0o644)
	svg := filepath.Join(dir, "bench.svg")
	r := stowage(t, nil, "", "bench", "--sizes", "256KiB,1MiB", "--writes", "64KiB", "--runs", "1", "--baseline",
		"--compare", other, "--plot", svg)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	for _, store := range []string{"filesystem", "disk2"} {
		for _, size := range []string{"256KiB", "1MiB"} {
			for _, pat := range []string{"plain", "patch"} {
				label := store + " " + size + " " + pat
				if !strings.Contains(string(b), ">"+label+"<") {
					t.Errorf("the plot has no series %q", label)
				}
			}
			if label := store + " " + size + " baseline (SDK/OS)"; !strings.Contains(string(b), ">"+label+"<") {
				t.Errorf("the plot has no series %q", label)
			}
		}
	}
	if !strings.Contains(r.stdout, "disk2") || strings.Count(r.stdout, "\n") != 1+8+1 {
		t.Errorf("table of two stores:\n%s", r.stdout)
	}
	pngFile := filepath.Join(dir, "bench.png")
	r = stowage(t, nil, "", "bench", "--sizes", "256KiB", "--writes", "64KiB", "--runs", "1", "--plot", pngFile)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	f, err := os.Open(pngFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 500 {
		t.Fatalf("not a PNG plot: %v", err)
	}
	if r := stowage(t, nil, "", "bench", "--plot", filepath.Join(dir, "x.gif")); r.code != 2 {
		t.Fatalf("--plot x.gif: %+v", r)
	}
}

// TestBenchSweepRecommends sweeps chunk sizes × concurrency on s3 (MinIO)
// and checks the rows, the plot's series and the recommendation.
func TestBenchSweepRecommends(t *testing.T) {
	const p = "STOWAGE_S3_MINIO_"
	env := conformance.RequireEnv(t, p+"ENDPOINT", p+"ACCESSKEY", p+"SECRETKEY", p+"BUCKET")
	dir := t.TempDir()
	svg := filepath.Join(dir, "s3.svg")
	environ := []string{"STOWAGE_PARAM_ACCESSKEY=" + env[p+"ACCESSKEY"], "STOWAGE_PARAM_SECRETKEY=" + env[p+"SECRETKEY"]}
	r := stowage(t, environ, "", "bench", "--driver", "s3", "--param", "bucket="+env[p+"BUCKET"], "--param", "regionendpoint="+env[p+"ENDPOINT"],
		"--sizes", "11MiB", "--writes", "1MiB", "--chunksize", "5MiB,6MiB", "--maxconcurrency", "1,2", "--runs", "1", "--patterns", "patch",
		"--plot", svg)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 1+4 || !strings.Contains(lines[0], "conc") {
		t.Fatalf("want a header and 4 rows (2 chunk sizes × 2 concurrencies):\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "recommended for this store: chunksize ") {
		t.Fatalf("no recommendation:\n%s", r.stderr)
	}
	b, _ := os.ReadFile(svg)
	for _, label := range []string{">11MiB patch ×1<", ">11MiB patch ×2<"} {
		if !strings.Contains(string(b), label) {
			t.Errorf("plot lacks the series %s", label)
		}
	}
}

func TestRecommend(t *testing.T) {
	row := func(chunk int64, conc int, size int64, mbps float64) benchRow {
		return benchRow{Size: size, ChunkSize: chunk, MaxConcurrency: conc, Pattern: "patch", UploadMBps: mbps}
	}
	// 16 MiB is fastest, 8 MiB within 5%: 8 MiB wins (less memory).
	got := recommend([]benchRow{
		row(4<<20, 4, 64<<20, 100), row(4<<20, 4, 256<<20, 100),
		row(8<<20, 4, 64<<20, 196), row(8<<20, 4, 256<<20, 196),
		row(16<<20, 4, 64<<20, 200), row(16<<20, 4, 256<<20, 200),
	})
	if !strings.Contains(got, "recommended for this store: chunksize 8MiB, maxconcurrency 4: 196.0 MB/s") ||
		!strings.Contains(got, "within 5% of the fastest, chunksize 16MiB, maxconcurrency 4 at 200.0 MB/s") {
		t.Fatalf("recommend: %q", got)
	}
	if got := recommend([]benchRow{row(0, 0, 1<<20, 50)}); got != "" {
		t.Fatalf("one setting: %q", got)
	}
}

// TestBenchAndCheckStats: --stats prints the counts the metrics decorator
// collected: operations by outcome, and for an HTTP backend the requests
// by method and status and the retries.
func TestBenchAndCheckStats(t *testing.T) {
	r := stowage(t, nil, "", "check", "--short", "--run", "^root/(List|Move)$", "--stats")
	if r.code != 0 || !regexp.MustCompile(`operations by outcome \(\d+\): .*Move ok \d+`).MatchString(r.stderr) {
		t.Fatalf("check --stats: %+v", r)
	}
	const p = "STOWAGE_S3_MINIO_"
	env := conformance.RequireEnv(t, p+"ENDPOINT", p+"ACCESSKEY", p+"SECRETKEY", p+"BUCKET")
	environ := []string{"STOWAGE_PARAM_ACCESSKEY=" + env[p+"ACCESSKEY"], "STOWAGE_PARAM_SECRETKEY=" + env[p+"SECRETKEY"]}
	r = stowage(t, environ, "", "bench", "--driver", "s3", "--param", "bucket="+env[p+"BUCKET"], "--param", "regionendpoint="+env[p+"ENDPOINT"],
		"--sizes", "6MiB", "--writes", "1MiB", "--runs", "1", "--patterns", "plain", "--stats")
	if r.code != 0 || !regexp.MustCompile(`HTTP requests by method and status \(\d+\): .*PUT 200 \d+`).MatchString(r.stderr) ||
		!strings.Contains(r.stderr, "HTTP retries (requests the SDK sent again): 0") {
		t.Fatalf("bench --stats: %+v", r)
	}
}
