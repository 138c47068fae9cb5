package main

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/stowage/stowage/driver"
)

const benchSummary = `Upload, then read back, blobs of every size × chunk size × write size, with
two patterns: "plain" (one writer: write everything, Commit) and "patch" (a
registry's chunked upload: an empty writer closed at once, then writers reopened
with append every --segment bytes, each checking Size before it writes, the
last one committing). Each read is checked against the data written (CRC-32C).
MB/s are 10^6 bytes per second of wall time; "requests" are the HTTP requests
of upload+read (counted through driver.WithTransport; "-" for a backend that
sends none); "peak heap" is the most Go heap in use during the case above what
was in use before it (runtime/metrics, sampled every 2ms). With --runs N the
figures are medians and peak heap the maximum. --baseline also uploads the
same bytes with the service's own SDK, or plain file writes for the
filesystem (same part or block size, concurrency and checksum as the driver,
so both do the same work), next to each run (after
it in odd-numbered runs, before it in even-numbered ones) and prints its MB/s
and the median of the per-run ratios driver/raw. With no configuration the bench runs
on the filesystem driver in a temporary folder and removes it afterwards; on a
configured store it works in a fresh folder /stowage-bench-<random> and deletes
it afterwards.`

// benchOptions are the flags of stowage bench.
type benchOptions struct {
	sizes, writes, chunks sizeList
	concurrency           intList
	patterns              string
	segment               sizeFlag
	runs                  int
	seed                  uint64
	baseline              bool
	json, csv             bool
	plot                  string
	compare               stringList
	stats                 *statsCollector // --stats
}

// sizeList is a comma-separated list of sizes such as 1MiB,64MiB.
type sizeList []int64

func (l *sizeList) String() string {
	var s []string
	for _, n := range *l {
		s = append(s, driver.Size(n).String())
	}
	return strings.Join(s, ",")
}

func (l *sizeList) Set(s string) error {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := driver.ParseSize(f)
		if err != nil {
			return err
		}
		out = append(out, int64(n))
	}
	if len(out) == 0 {
		return errors.New("empty list")
	}
	*l = out
	return nil
}

// sizeFlag is one size.
type sizeFlag int64

func (s *sizeFlag) String() string { return driver.Size(*s).String() }

func (s *sizeFlag) Set(v string) error {
	n, err := driver.ParseSize(v)
	*s = sizeFlag(n)
	return err
}

// benchRow is one line of the bench's output.
type benchRow struct {
	// Store names the store with --compare (its config file's name); ""
	// otherwise.
	Store     string `json:"store,omitempty"`
	Driver    string `json:"driver"`
	Size      int64  `json:"size"`
	ChunkSize int64  `json:"chunk_size"` // 0: the driver does not cut uploads into parts
	// MaxConcurrency is the maxconcurrency given with --maxconcurrency; 0
	// means the driver's own.
	MaxConcurrency int    `json:"max_concurrency,omitempty"`
	WriteSize      int64  `json:"write_size"`
	Pattern        string `json:"pattern"`
	Runs           int    `json:"runs"`
	// UploadMBps and ReadMBps are medians over the runs; UploadMinMBps
	// and UploadMaxMBps the spread of the upload.
	UploadMBps    float64 `json:"upload_mbps"`
	UploadMinMBps float64 `json:"upload_min_mbps"`
	UploadMaxMBps float64 `json:"upload_max_mbps"`
	ReadMBps      float64 `json:"read_mbps"`
	// UploadRequests and ReadRequests are nil for a backend that sends no
	// HTTP requests.
	UploadRequests *int64 `json:"upload_requests"`
	ReadRequests   *int64 `json:"read_requests"`
	// PeakHeapBytes is the largest over the runs.
	PeakHeapBytes int64 `json:"peak_heap_bytes"`
	// RawUploadMBps and Ratio (the median of per-run driver/raw upload
	// ratios) are set with --baseline.
	RawUploadMBps *float64 `json:"raw_upload_mbps,omitempty"`
	Ratio         *float64 `json:"ratio,omitempty"`
}

func runBench(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("bench", "[flags]", benchSummary)
	var cf configFlags
	cf.register(fs)
	o := benchOptions{
		sizes:   sizeList{1 << 20, 64 << 20, 256 << 20},
		writes:  sizeList{32 << 10, 8 << 20},
		segment: 32 << 20,
		runs:    3,
		seed:    1,
	}
	fs.Var(&o.sizes, "sizes", "blob `sizes`, comma-separated")
	fs.Var(&o.writes, "writes", "`sizes` of each Write call, comma-separated")
	fs.Var(&o.chunks, "chunksize", "chunk `sizes` to try, comma-separated, passed as the driver's chunksize parameter (default: the driver's own)")
	fs.StringVar(&o.patterns, "patterns", "plain,patch", "upload `patterns`: plain, patch")
	fs.Var(&o.segment, "segment", "bytes per writer session in the patch pattern (a registry PATCH)")
	fs.Var(&o.concurrency, "maxconcurrency", "`counts` of parts in flight to try, comma-separated, passed as the driver's maxconcurrency parameter (default: the driver's own)")
	fs.IntVar(&o.runs, "runs", 3, "repeat each case `N` times and report medians and the spread (min-max)")
	fs.StringVar(&o.plot, "plot", "", "draw upload MB/s by chunk size, a line per blob size (and store), the baseline dashed, into `FILE` (.svg or .png)")
	stats := fs.Bool("stats", false, "count operations by outcome, HTTP requests by method and status, and retries (through the metrics decorator), printed on stderr at the end")
	fs.Var(&o.compare, "compare", "also run the same sweep on the store of config `FILE` (repeatable), side by side in the table and the plot")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the generated data")
	fs.BoolVar(&o.baseline, "baseline", false, "also time the raw SDK/OS upload of the same bytes and print the ratio")
	fs.BoolVar(&o.json, "json", false, "print JSON (an array of rows) instead of a table")
	fs.BoolVar(&o.csv, "csv", false, "print CSV instead of a table")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, 0, "(none)"); err != nil {
		return err
	}
	if o.runs < 1 {
		return usageErr(errors.New("--runs must be at least 1"))
	}
	if o.json && o.csv {
		return usageErr(errors.New("--json and --csv exclude each other"))
	}
	if o.segment <= 0 {
		return usageErr(errors.New("--segment must be positive"))
	}
	for _, l := range []struct {
		name string
		v    sizeList
	}{{"--sizes", o.sizes}, {"--writes", o.writes}, {"--chunksize", o.chunks}} {
		for _, n := range l.v {
			if n <= 0 {
				return usageErr(fmt.Errorf("%s: sizes must be positive", l.name))
			}
		}
	}
	var patterns []string
	for _, p := range strings.Split(o.patterns, ",") {
		switch p = strings.TrimSpace(p); p {
		case "plain", "patch":
			patterns = append(patterns, p)
		case "":
		default:
			return usageErr(fmt.Errorf("--patterns: unknown pattern %q (want plain, patch)", p))
		}
	}
	if len(patterns) == 0 {
		return usageErr(errors.New("--patterns is empty"))
	}

	if *stats {
		o.stats = newStats()
	}
	if o.plot != "" && !strings.HasSuffix(o.plot, ".svg") && !strings.HasSuffix(o.plot, ".png") {
		return usageErr(fmt.Errorf("--plot %s: want a file name ending in .svg or .png", o.plot))
	}
	type namedStore struct {
		label string
		cfg   storeConfig
	}
	var stores []namedStore
	store, cleanup, err := a.scratchStore(&cf, "stowage-bench-")
	if err != nil {
		return err
	}
	defer cleanup()
	if len(o.compare) > 0 {
		label := store.Driver
		if cf.file != "" {
			label = strings.TrimSuffix(filepath.Base(cf.file), filepath.Ext(cf.file))
		}
		stores = append(stores, namedStore{label, store})
		for _, f := range o.compare {
			data, err := os.ReadFile(f)
			if err != nil {
				return usageErr(fmt.Errorf("--compare: %w", err))
			}
			c, err := parseConfig(data)
			if err != nil {
				return usageErr(fmt.Errorf("--compare %s: %w", f, err))
			}
			stores = append(stores, namedStore{strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)), c})
		}
	} else {
		stores = append(stores, namedStore{"", store})
	}
	var rows []benchRow
	for _, st := range stores {
		r, err := a.benchStore(ctx, o, st.cfg, st.label, patterns)
		if err != nil {
			if st.label != "" {
				return fmt.Errorf("%s: %w", st.label, err)
			}
			return err
		}
		rows = append(rows, r...)
	}
	if o.plot != "" {
		if err := plotBench(o.plot, rows, o.baseline); err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
		fmt.Fprintf(a.stderr, "stowage bench: plot written to %s\n", o.plot)
	}
	if rec := recommend(rows); rec != "" {
		fmt.Fprintln(a.stderr, rec)
	}
	if err := o.stats.print(a.stderr); err != nil {
		return err
	}
	switch {
	case o.json:
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case o.csv:
		return writeBenchCSV(a.stdout, rows, o.baseline)
	}
	return writeBenchTable(a.stdout, rows, o.baseline)
}

// benchStore runs the sweep (sizes × chunk sizes × concurrencies × writes
// × patterns, o.runs times each) on one store; label names it in rows.
func (a *app) benchStore(ctx context.Context, o benchOptions, store storeConfig, label string, patterns []string) ([]benchRow, error) {
	var mkBaseline BaselineFactory
	if o.baseline {
		if mkBaseline = baselineFor(store.Driver); mkBaseline == nil {
			return nil, usageErr(fmt.Errorf("--baseline: driver %s has no baseline (have: %s)", store.Driver, strings.Join(baselineNames(), ", ")))
		}
	}

	chunks := []int64{0} // 0: the driver's default
	if len(o.chunks) > 0 {
		chunks = o.chunks
	}
	concs := []int{0} // 0: the driver's default
	if len(o.concurrency) > 0 {
		concs = o.concurrency
	}
	var maxWrite int64
	for _, w := range o.writes {
		maxWrite = max(maxWrite, w)
	}
	var total int64
	for _, s := range o.sizes {
		per := 2 * s
		if o.baseline {
			per += s
		}
		total += per * int64(len(o.writes)*len(patterns)*o.runs*len(chunks)*len(concs))
	}
	b := &bencher{o: o, wbuf: make([]byte, maxWrite), rbuf: make([]byte, 1<<20), folder: "/stowage-bench-" + randomHex(4), stderr: a.stderr}
	// Open the store with every chunk size first, so that a bad
	// configuration fails before any work.
	rawCtx := ctx // the baseline's requests are not counted
	ctx = o.stats.hook(driver.WithTransport(ctx, b.reqs.wrap), store.Driver)
	type target struct {
		d    driver.Driver
		raw  Baseline
		conc int
	}
	var targets []target
	for _, chunk := range chunks {
		for _, conc := range concs {
			cfg := store.clone()
			if chunk > 0 {
				cfg.set("chunksize", driver.Size(chunk).String())
			}
			if conc > 0 {
				cfg.set("maxconcurrency", conc)
			}
			d, err := cfg.open(ctx)
			if err != nil {
				switch {
				case chunk > 0 && conc > 0:
					return nil, fmt.Errorf("--chunksize %s, --maxconcurrency %d: %w", driver.Size(chunk), conc, err)
				case chunk > 0:
					return nil, fmt.Errorf("--chunksize %s: %w", driver.Size(chunk), err)
				case conc > 0:
					return nil, fmt.Errorf("--maxconcurrency %d: %w", conc, err)
				}
				return nil, err
			}
			var raw Baseline
			if mkBaseline != nil {
				if raw, err = mkBaseline(rawCtx, cfg.Params); err != nil {
					return nil, fmt.Errorf("baseline: %w", err)
				}
			}
			targets = append(targets, target{o.stats.wrap(d), raw, conc})
		}
	}
	name := store.Driver
	if label != "" {
		name = label + " (" + store.Driver + ")"
	}
	fmt.Fprintf(a.stderr, "stowage bench: %s %s, %d cases × %d runs\n", name, describeStore(store),
		len(o.sizes)*len(o.writes)*len(patterns)*len(targets), o.runs)

	b.bar = newProgressBar(a.stderr, total, a.progress)
	var rows []benchRow
	err := func() error {
		defer b.bar.finish()
		for _, tg := range targets {
			d, raw := tg.d, tg.raw
			caps := driver.BackendOf(d).Capabilities()
			err := func() error {
				defer b.removeFolder(ctx, d)
				for _, size := range o.sizes {
					crc := genCRC(o.seed+uint64(size), size)
					for _, ws := range o.writes {
						for _, pat := range patterns {
							row, err := b.runCase(ctx, d, raw, size, ws, pat, crc)
							if err != nil {
								return fmt.Errorf("size %s, write %s, %s: %w", driver.Size(size), driver.Size(ws), pat, err)
							}
							row.ChunkSize = caps.ChunkSize
							row.MaxConcurrency = tg.conc
							row.Store = label
							rows = append(rows, row)
						}
					}
				}
				return nil
			}()
			if err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// scratchStore returns the store to bench or check: the configured one, or,
// with no configuration, the filesystem driver in a new temporary folder
// that cleanup removes.
func (a *app) scratchStore(cf *configFlags, tempPrefix string) (storeConfig, func(), error) {
	cfg, ok, err := cf.load(a.environ)
	if err != nil {
		return cfg, nil, err
	}
	if ok {
		return cfg, func() {}, nil
	}
	dir, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return cfg, nil, err
	}
	cfg = storeConfig{Driver: "filesystem", Params: driver.Params{"rootdirectory": dir}}
	return cfg, func() { os.RemoveAll(dir) }, nil
}

// describeStore names where a store is, for the bench's first line. It
// prints only the root directory, never other parameters (they may be
// secrets).
func describeStore(c storeConfig) string {
	if v, ok := c.get("rootdirectory"); ok {
		return fmt.Sprintf("at %v", v)
	}
	return "at its root"
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// bencher runs the cases of one bench.
type bencher struct {
	o          benchOptions
	bar        *progressBar
	wbuf, rbuf []byte
	folder     string
	stderr     io.Writer
	seq        int
	reqs       reqCounter
}

// reqCounter counts HTTP requests through driver.WithTransport.
type reqCounter struct {
	n      atomic.Int64
	hooked atomic.Bool // a backend built its HTTP client with the hook
}

func (c *reqCounter) wrap(base http.RoundTripper) http.RoundTripper {
	c.hooked.Store(true)
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		c.n.Add(1)
		return base.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// removeFolder deletes the bench's working folder; a folder that is
// already gone is fine.
func (b *bencher) removeFolder(ctx context.Context, d driver.Driver) {
	ctx = context.WithoutCancel(ctx)
	if err := d.Delete(ctx, b.folder); err != nil && !errors.Is(err, driver.ErrNotFound) {
		fmt.Fprintf(b.stderr, "stowage bench: cleaning up %s: %v\n", b.folder, err)
	}
}

// runCase runs one row: o.runs times upload, read, (raw upload), and
// returns medians.
func (b *bencher) runCase(ctx context.Context, d driver.Driver, raw Baseline, size, ws int64, pattern string, crc uint32) (benchRow, error) {
	row := benchRow{Driver: d.Name(), Size: size, WriteSize: ws, Pattern: pattern, Runs: b.o.runs}
	var ups, reads, raws, ratios []float64
	var upReqs, readReqs []int64
	seed := b.o.seed + uint64(size)
	label := fmt.Sprintf("%s %s/%s", driver.Size(size), driver.Size(ws), pattern)
	// rawUpload times the baseline's upload of the same bytes.
	rawUpload := func() (float64, error) {
		b.bar.setLabel(label + " raw upload")
		rp := fmt.Sprintf("%s/raw-%d", b.folder, b.seq)
		g := &genReader{seed: seed, size: size, onRead: b.bar.add}
		t0 := time.Now()
		err := raw.Upload(ctx, rp, size, g)
		rt := time.Since(t0)
		if err != nil {
			return 0, fmt.Errorf("baseline: %w", err)
		}
		if err := raw.Delete(ctx, rp); err != nil {
			return 0, fmt.Errorf("baseline: %w", err)
		}
		return mbps(size, rt), nil
	}
	for run := range b.o.runs {
		b.seq++
		// The baseline runs after the driver in even runs and before it in
		// odd ones, so that neither always meets the other's leftovers
		// (dirty pages, a warm connection pool).
		var rawMBps float64
		if raw != nil && run%2 == 1 {
			var err error
			if rawMBps, err = rawUpload(); err != nil {
				return row, err
			}
		}
		p := fmt.Sprintf("%s/blob-%d", b.folder, b.seq)
		mem := startMemSampler()
		b.reqs.n.Store(0)
		b.bar.setLabel(label + " upload")
		t0 := time.Now()
		err := b.upload(ctx, d, p, size, ws, pattern, seed)
		up := time.Since(t0)
		upN := b.reqs.n.Swap(0)
		if err != nil {
			mem.stop()
			return row, err
		}
		b.bar.setLabel(label + " read")
		t0 = time.Now()
		err = b.read(ctx, d, p, size, crc)
		rd := time.Since(t0)
		rdN := b.reqs.n.Swap(0)
		peak := mem.stop()
		if err != nil {
			return row, err
		}
		if err := d.Delete(ctx, p); err != nil {
			return row, err
		}
		ups = append(ups, mbps(size, up))
		reads = append(reads, mbps(size, rd))
		upReqs = append(upReqs, upN)
		readReqs = append(readReqs, rdN)
		row.PeakHeapBytes = max(row.PeakHeapBytes, peak)
		if raw != nil {
			if run%2 == 0 {
				if rawMBps, err = rawUpload(); err != nil {
					return row, err
				}
			}
			raws = append(raws, rawMBps)
			ratios = append(ratios, mbps(size, up)/rawMBps)
		}
	}
	row.UploadMBps = median(ups)
	row.UploadMinMBps, row.UploadMaxMBps = slices.Min(ups), slices.Max(ups)
	row.ReadMBps = median(reads)
	if b.reqs.hooked.Load() {
		u, r := medianInt(upReqs), medianInt(readReqs)
		row.UploadRequests, row.ReadRequests = &u, &r
	}
	if raw != nil {
		m, r := median(raws), median(ratios)
		row.RawUploadMBps, row.Ratio = &m, &r
	}
	return row, nil
}

// upload writes the seed's data to p in writes of ws bytes, with the plain
// or the patch pattern.
func (b *bencher) upload(ctx context.Context, d driver.Driver, p string, size, ws int64, pattern string, seed uint64) error {
	write := func(w driver.FileWriter, off, end int64) error {
		for off < end {
			n := min(ws, end-off)
			fillAt(b.wbuf[:n], seed, off)
			if _, err := w.Write(b.wbuf[:n]); err != nil {
				return err
			}
			b.bar.add(int(n))
			off += n
		}
		return nil
	}
	abandon := func(w driver.FileWriter, err error) error {
		w.Cancel(context.WithoutCancel(ctx))
		w.Close()
		return err
	}
	if pattern == "plain" {
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			return err
		}
		if err := write(w, 0, size); err != nil {
			return abandon(w, err)
		}
		if err := w.Commit(ctx); err != nil {
			return abandon(w, err)
		}
		return w.Close()
	}
	// patch: POST opens the upload, each PATCH resumes it, the last commits.
	w, err := d.Writer(ctx, p, false)
	if err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	seg := int64(b.o.segment)
	for off := int64(0); ; {
		w, err := d.Writer(ctx, p, true)
		if err != nil {
			return err
		}
		if w.Size() != off {
			return abandon(w, fmt.Errorf("resumed writer has size %d, want %d", w.Size(), off))
		}
		end := min(off+seg, size)
		if err := write(w, off, end); err != nil {
			return abandon(w, err)
		}
		if end == size {
			if err := w.Commit(ctx); err != nil {
				return abandon(w, err)
			}
			return w.Close()
		}
		if err := w.Close(); err != nil {
			return err
		}
		off = end
	}
}

// read reads p back and checks its size and CRC-32C.
func (b *bencher) read(ctx context.Context, d driver.Driver, p string, size int64, want uint32) error {
	r, err := d.Reader(ctx, p, 0)
	if err != nil {
		return err
	}
	defer r.Close()
	var crc uint32
	var n int64
	for {
		k, err := r.Read(b.rbuf)
		if k > 0 {
			crc = crc32.Update(crc, castagnoli, b.rbuf[:k])
			n += int64(k)
			b.bar.add(k)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if n != size {
		return fmt.Errorf("read back %d bytes, want %d", n, size)
	}
	if crc != want {
		return fmt.Errorf("read back different bytes than written (CRC-32C %08x, want %08x)", crc, want)
	}
	return r.Close()
}

func mbps(n int64, d time.Duration) float64 {
	if d <= 0 {
		d = time.Nanosecond
	}
	return float64(n) / 1e6 / d.Seconds()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianInt(v []int64) int64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// memSampler follows the Go heap during one case.
type memSampler struct {
	base, peak uint64
	done       chan struct{}
	stopped    chan struct{}
}

var heapMetric = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

func heapInUse() uint64 {
	s := slices.Clone(heapMetric)
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// startMemSampler collects garbage, takes the heap in use as the baseline,
// and samples it every 2ms until stop.
func startMemSampler() *memSampler {
	runtime.GC()
	m := &memSampler{done: make(chan struct{}), stopped: make(chan struct{})}
	m.base = heapInUse()
	m.peak = m.base
	go func() {
		defer close(m.stopped)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.done:
				return
			case <-t.C:
				m.peak = max(m.peak, heapInUse())
			}
		}
	}()
	return m
}

// stop ends sampling and returns the peak above the baseline.
func (m *memSampler) stop() int64 {
	close(m.done)
	<-m.stopped
	m.peak = max(m.peak, heapInUse())
	return int64(m.peak - m.base)
}

// tableShape says which optional columns the table has.
type tableShape struct {
	baseline, spread, conc, store bool
}

func shapeOf(rows []benchRow, baseline bool) tableShape {
	sh := tableShape{baseline: baseline}
	for _, r := range rows {
		sh.spread = sh.spread || r.Runs > 1
		sh.conc = sh.conc || r.MaxConcurrency > 0
		sh.store = sh.store || r.Store != ""
	}
	return sh
}

// benchColumns are the table's columns.
func benchColumns(sh tableShape) []string {
	var c []string
	if sh.store {
		c = append(c, "store")
	}
	c = append(c, "size", "chunk")
	if sh.conc {
		c = append(c, "conc")
	}
	c = append(c, "write", "pattern", "upload MB/s")
	if sh.spread {
		c = append(c, "spread")
	}
	c = append(c, "read MB/s", "requests (up+read)", "peak heap")
	if sh.baseline {
		c = append(c, "raw upload MB/s", "ratio")
	}
	return c
}

// cells formats a row for the table.
func (r benchRow) cells(sh tableShape) []string {
	sz := func(n int64) string { return driver.Size(n).String() }
	chunk := "-"
	if r.ChunkSize > 0 {
		chunk = sz(r.ChunkSize)
	}
	reqs := "-"
	if r.UploadRequests != nil {
		reqs = fmt.Sprintf("%d+%d", *r.UploadRequests, *r.ReadRequests)
	}
	peak := humanBytes(r.PeakHeapBytes)
	var c []string
	if sh.store {
		c = append(c, r.Store)
	}
	c = append(c, sz(r.Size), chunk)
	if sh.conc {
		conc := "-"
		if r.MaxConcurrency > 0 {
			conc = strconv.Itoa(r.MaxConcurrency)
		}
		c = append(c, conc)
	}
	c = append(c, sz(r.WriteSize), r.Pattern, strconv.FormatFloat(r.UploadMBps, 'f', 1, 64))
	if sh.spread {
		c = append(c, fmt.Sprintf("%.1f-%.1f", r.UploadMinMBps, r.UploadMaxMBps))
	}
	c = append(c, strconv.FormatFloat(r.ReadMBps, 'f', 1, 64), reqs, peak)
	if sh.baseline {
		if r.RawUploadMBps != nil {
			c = append(c, strconv.FormatFloat(*r.RawUploadMBps, 'f', 1, 64), strconv.FormatFloat(*r.Ratio, 'f', 2, 64))
		} else {
			c = append(c, "-", "-")
		}
	}
	return c
}

// humanBytes formats a byte count with one decimal in binary units.
func humanBytes(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "KiB", "MiB", "GiB"} {
		if f < 1024 || u == "GiB" {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1024
	}
	return ""
}

// bigBlob is the size from which the table's summary line reports the
// ratio separately: below it, per-file costs (fsync, rename, requests)
// dominate and the ratio says little about streaming throughput.
const bigBlob = 64 << 20

func writeBenchTable(w io.Writer, rows []benchRow, baseline bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	sh := shapeOf(rows, baseline)
	fmt.Fprintln(tw, strings.Join(benchColumns(sh), "\t")+"\t")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r.cells(sh), "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !baseline {
		return nil
	}
	var all, big []float64
	for _, r := range rows {
		if r.Ratio == nil {
			continue
		}
		all = append(all, *r.Ratio)
		if r.Size >= bigBlob {
			big = append(big, *r.Ratio)
		}
	}
	if len(all) > 0 {
		fmt.Fprintf(w, "ratio driver/raw upload: median %.2f over all %d rows", median(all), len(all))
		if len(big) > 0 {
			fmt.Fprintf(w, ", %.2f over the %d rows of blobs ≥ %s", median(big), len(big), driver.Size(bigBlob))
		}
		fmt.Fprintln(w)
	}
	return nil
}

func writeBenchCSV(w io.Writer, rows []benchRow, baseline bool) error {
	cw := csv.NewWriter(w)
	head := []string{"driver", "size", "chunk_size", "write_size", "pattern", "runs", "upload_mbps", "read_mbps", "upload_requests", "read_requests", "peak_heap_bytes"}
	if baseline {
		head = append(head, "raw_upload_mbps", "ratio")
	}
	head = append(head, "upload_min_mbps", "upload_max_mbps", "max_concurrency", "store")
	cw.Write(head)
	for _, r := range rows {
		up, rd := "", ""
		if r.UploadRequests != nil {
			up, rd = strconv.FormatInt(*r.UploadRequests, 10), strconv.FormatInt(*r.ReadRequests, 10)
		}
		rec := []string{r.Driver, strconv.FormatInt(r.Size, 10), strconv.FormatInt(r.ChunkSize, 10), strconv.FormatInt(r.WriteSize, 10), r.Pattern,
			strconv.Itoa(r.Runs), strconv.FormatFloat(r.UploadMBps, 'f', 2, 64), strconv.FormatFloat(r.ReadMBps, 'f', 2, 64), up, rd,
			strconv.FormatInt(r.PeakHeapBytes, 10)}
		if baseline {
			if r.RawUploadMBps != nil {
				rec = append(rec, strconv.FormatFloat(*r.RawUploadMBps, 'f', 2, 64), strconv.FormatFloat(*r.Ratio, 'f', 3, 64))
			} else {
				rec = append(rec, "", "")
			}
		}
		rec = append(rec, strconv.FormatFloat(r.UploadMinMBps, 'f', 2, 64), strconv.FormatFloat(r.UploadMaxMBps, 'f', 2, 64),
			strconv.Itoa(r.MaxConcurrency), r.Store)
		cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}
