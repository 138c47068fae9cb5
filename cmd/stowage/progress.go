package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progressBar draws one line on a terminal: a bar of the bytes moved so far
// against the total, the current step, and an estimate of the time left. A
// nil *progressBar does nothing, so callers need not check whether stderr is
// a terminal. It is a few dozen lines of stdlib, so the command needs no
// progress-bar dependency.
type progressBar struct {
	w     io.Writer
	total int64
	start time.Time
	done  atomic.Int64
	mu    sync.Mutex
	label string
	stop  chan struct{}
	wg    sync.WaitGroup
}

// newProgressBar starts a bar redrawn every 200ms, or returns nil when on
// is false or total is 0.
func newProgressBar(w io.Writer, total int64, on bool) *progressBar {
	if !on || total <= 0 {
		return nil
	}
	p := &progressBar{w: w, total: total, start: time.Now(), stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
	return p
}

// add counts n more bytes.
func (p *progressBar) add(n int) {
	if p != nil {
		p.done.Add(int64(n))
	}
}

// setLabel names the current step.
func (p *progressBar) setLabel(s string) {
	if p != nil {
		p.mu.Lock()
		p.label = s
		p.mu.Unlock()
	}
}

func (p *progressBar) draw() {
	done := min(p.done.Load(), p.total)
	frac := float64(done) / float64(p.total)
	const width = 30
	fill := int(frac * width)
	eta := "?"
	if el := time.Since(p.start); done > 0 {
		left := time.Duration(float64(el) * (1/frac - 1))
		eta = left.Round(time.Second).String()
	}
	p.mu.Lock()
	label := p.label
	p.mu.Unlock()
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%% %s  ETA %s\x1b[K",
		strings.Repeat("#", fill), strings.Repeat("-", width-fill), frac*100, label, eta)
}

// finish stops the bar and clears its line.
func (p *progressBar) finish() {
	if p == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	fmt.Fprint(p.w, "\r\x1b[K")
}
