//go:build race

package chunk

// raceEnabled is true under the race detector, which makes sync.Pool drop
// items at random, so reuse cannot be measured.
const raceEnabled = true
