package main

import (
	"fmt"
	"image/color"
	"math"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/stowage/stowage/driver"
)

// intList is a comma-separated list of positive counts such as 1,4,16.
type intList []int

func (l *intList) String() string {
	var s []string
	for _, n := range *l {
		s = append(s, strconv.Itoa(n))
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	*l = nil
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive count", f)
		}
		*l = append(*l, n)
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// setting is one point of the sweep a recommendation picks from.
type setting struct {
	store string
	chunk int64
	conc  int
}

func (s setting) String() string {
	out := "chunksize " + driver.Size(s.chunk).String()
	if s.chunk == 0 {
		out = "the default chunksize"
	}
	if s.conc > 0 {
		out += fmt.Sprintf(", maxconcurrency %d", s.conc)
	}
	return out
}

// recommend picks, for each store, the chunk size (and concurrency) to use:
// the settings are scored by the geometric mean of their median upload MB/s
// over every blob size of the registry PATCH pattern (plain when the sweep
// has no patch rows), and the smallest chunk size (then the fewest parts in
// flight) within 5% of the best score wins: the same speed for less memory
// per upload (chunksize × parts in flight). It returns "" when the sweep
// tried one setting per store.
func recommend(rows []benchRow) string {
	pattern := "plain"
	for _, r := range rows {
		if r.Pattern == "patch" {
			pattern = "patch"
		}
	}
	type acc struct {
		logSum float64
		n      int
	}
	byStore := map[string]map[setting]*acc{}
	var storeOrder []string
	for _, r := range rows {
		if r.Pattern != pattern || !(r.UploadMBps > 0) {
			continue
		}
		m := byStore[r.Store]
		if m == nil {
			m = map[setting]*acc{}
			byStore[r.Store] = m
			storeOrder = append(storeOrder, r.Store)
		}
		k := setting{r.Store, r.ChunkSize, r.MaxConcurrency}
		if m[k] == nil {
			m[k] = &acc{}
		}
		m[k].logSum += math.Log(r.UploadMBps)
		m[k].n++
	}
	var lines []string
	for _, st := range storeOrder {
		m := byStore[st]
		if len(m) < 2 {
			continue
		}
		var all []setting
		best, bestScore := setting{}, 0.0
		for k, a := range m {
			all = append(all, k)
			if sc := math.Exp(a.logSum / float64(a.n)); sc > bestScore {
				best, bestScore = k, sc
			}
		}
		sort.Slice(all, func(i, j int) bool {
			if all[i].chunk != all[j].chunk {
				return all[i].chunk < all[j].chunk
			}
			return all[i].conc < all[j].conc
		})
		pick := best
		for _, k := range all {
			if math.Exp(m[k].logSum/float64(m[k].n)) >= 0.95*bestScore {
				pick = k
				break
			}
		}
		who := "this store"
		if st != "" {
			who = st
		}
		score := math.Exp(m[pick].logSum / float64(m[pick].n))
		why := fmt.Sprintf("the fastest (%.1f MB/s, geometric mean of the %s uploads over the blob sizes)", score, pattern)
		if pick != best {
			why = fmt.Sprintf("%.1f MB/s (geometric mean of the %s uploads over the blob sizes), within 5%% of the fastest, %s at %.1f MB/s, with less memory per upload",
				score, pattern, best, bestScore)
		}
		lines = append(lines, fmt.Sprintf("recommended for %s: %s: %s", who, pick, why))
	}
	return strings.Join(lines, "\n")
}

// plotBench draws upload MB/s by chunk size: one line per store, blob size,
// concurrency and pattern (of the largest write size), and with a baseline
// one dashed line per store, blob size and concurrency (the baseline has no
// pattern: it uploads in one go), in the color of that blob size's first
// line. The file's extension (.svg or .png) picks the format.
func plotBench(file string, rows []benchRow, baseline bool) error {
	var maxWrite int64
	for _, r := range rows {
		maxWrite = max(maxWrite, r.WriteSize)
	}
	type key struct {
		store   string
		size    int64
		conc    int
		pattern string
	}
	series := map[key]plotter.XYs{}
	raw := map[key]map[float64][]float64{} // pattern "": x → raw MB/s of every row there
	var keys, rawKeys []key
	maxY := 0.0
	for _, r := range rows {
		if r.WriteSize != maxWrite {
			continue
		}
		k := key{r.Store, r.Size, r.MaxConcurrency, r.Pattern}
		if _, ok := series[k]; !ok {
			keys = append(keys, k)
		}
		x := float64(r.ChunkSize) / (1 << 20)
		series[k] = append(series[k], plotter.XY{X: x, Y: r.UploadMBps})
		maxY = max(maxY, r.UploadMBps)
		if baseline && r.RawUploadMBps != nil {
			rk := key{r.Store, r.Size, r.MaxConcurrency, ""}
			if raw[rk] == nil {
				raw[rk] = map[float64][]float64{}
				rawKeys = append(rawKeys, rk)
			}
			raw[rk][x] = append(raw[rk][x], *r.RawUploadMBps)
			maxY = max(maxY, *r.RawUploadMBps)
		}
	}
	name := func(k key) string {
		s := driver.Size(k.size).String()
		if k.pattern != "" {
			s += " " + k.pattern
		}
		if k.conc > 0 {
			s += fmt.Sprintf(" ×%d", k.conc)
		}
		if k.store != "" {
			s = k.store + " " + s
		}
		return s
	}
	p := plot.New()
	p.Title.Text = "stowage bench: upload throughput by chunk size"
	p.X.Label.Text = fmt.Sprintf("chunk size (MiB; 0 = the driver's own), writes of %s", driver.Size(maxWrite))
	p.Y.Label.Text = "upload MB/s (median)"
	p.Y.Min = 0
	// Room above the lines for the legend.
	p.Y.Max = maxY * (1.15 + 0.06*float64(len(keys)+len(rawKeys)))
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	colorOf := map[key]color.Color{}
	for i, k := range keys {
		pts := series[k]
		sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		c := plotColor(i)
		ck := key{k.store, k.size, k.conc, ""}
		if _, ok := colorOf[ck]; !ok {
			colorOf[ck] = c
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		line.Color, points.Color = c, c
		points.Shape = draw.CircleGlyph{}
		if k.pattern == "patch" {
			line.Width = vg.Points(2)
		}
		p.Add(line, points)
		p.Legend.Add(name(k), line, points)
	}
	for _, rk := range rawKeys {
		var pts plotter.XYs
		for x, v := range raw[rk] {
			pts = append(pts, plotter.XY{X: x, Y: median(v)})
		}
		sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		rl, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		rl.Color = colorOf[rk]
		rl.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		p.Add(rl)
		p.Legend.Add(name(rk)+" baseline (SDK/OS)", rl)
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, file)
}

// plotColor is the i-th of a palette that tells lines apart.
func plotColor(i int) color.Color {
	palette := []color.RGBA{
		{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
		{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
	}
	return palette[i%len(palette)]
}
