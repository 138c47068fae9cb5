package filesystem

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stowage/stowage/driver"
)

const (
	// lockName is the flock target in an upload's folder.
	lockName = "lock"
	// dataPrefix starts the name of a session's data file; the session id
	// follows.
	dataPrefix = "data-"
	// copyPrefix starts the name of the file into which a new session copies
	// the committed file (Writer with append true and no upload); the
	// session id follows. Only the complete, fsynced copy is renamed to the
	// session's data file, so a copy that a crash interrupted is never taken
	// for a session. Copies are made under the exclusive lock, so one seen
	// under that lock is such a leftover.
	copyPrefix = "copy-"
	// lockRetries bounds how often lockUpload reopens a lock file that was
	// removed while it waited.
	lockRetries = 1000
	// lockPollMin and lockPollMax bound the pause between two attempts at
	// an upload's exclusive lock: it starts at lockPollMin and doubles up
	// to lockPollMax.
	lockPollMin = time.Millisecond
	lockPollMax = 50 * time.Millisecond
)

// cancelGrace bounds how long Cancel with a context that has already ended
// waits for the upload's lock to clean up. A variable so that tests can
// shorten it.
var cancelGrace = 5 * time.Second

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand.Read panics rather than fail)
	return hex.EncodeToString(b)
}

// newSessionID returns a fresh session id. Ids of later sessions sort after
// earlier ones (a fixed-width timestamp comes first), so that after a crash
// between creating a new session and removing the old, the newest is live.
func newSessionID() string {
	return fmt.Sprintf("%016x%s", uint64(time.Now().UnixNano()), randomHex(8))
}

// uploadDir is the folder of the in-progress upload of the driver path p.
// The sha256 keeps names short and fixed-length whatever the path.
func (b *backend) uploadDir(p string) string {
	sum := sha256.Sum256([]byte(p))
	return b.metaPath(uploadsDir, hex.EncodeToString(sum[:]))
}

// pollLock waits for the exclusive lock of the upload folder dir, which
// try attempts without blocking: it calls try with a blocking-operation slot
// held until try reports that it got the lock, or fails. Between attempts it
// holds no slot and pauses lockPollMin, doubling up to lockPollMax, so that
// a waiter occupies neither a slot nor an OS thread; when ctx ends first it
// returns ctx's cause. When it returns nil the caller holds the slot, and
// releases it once done under the lock.
//
// While it waits it holds a shared flock of the folder dir itself, the
// sign that a writer renewing its lease looks for (see yieldToWaiters):
// without it, a streaming writer, whose lease is free for only leaseYield
// out of every leaseTime, would starve a waiter that polls.
func (b *backend) pollLock(ctx context.Context, dir string, try func() (bool, error)) error {
	wait := lockPollMin
	var t *time.Timer
	var gate *os.File
	defer func() {
		if gate != nil {
			gate.Close() // after the lock is taken (or given up)
		}
	}()
	for {
		if err := b.acquire(ctx); err != nil {
			return context.Cause(ctx)
		}
		ok, err := try()
		if ok && err == nil {
			return nil
		}
		if err == nil && gate == nil {
			gate = b.j.enterGate(dir)
		}
		b.release()
		if err != nil {
			return err
		}
		if t == nil {
			t = time.NewTimer(wait)
		} else {
			t.Reset(wait)
		}
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
		wait = min(2*wait, lockPollMax)
	}
}

// enterGate takes a shared flock of the upload folder dir, to show that
// someone waits for the upload's exclusive lock. It returns nil when it
// could not (the folder is gone, or a writer is looking right now); the
// caller tries again after its next attempt.
func (j *jail) enterGate(dir string) *os.File {
	g, err := j.Open(dir)
	if err != nil {
		return nil
	}
	if ok, err := tryFlock(g, lockShared); err != nil || !ok {
		g.Close()
		return nil
	}
	return g
}

// lockUpload opens the lock file of the upload folder dir (creating both)
// and takes an exclusive flock on it, waiting as pollLock does: it gives up
// with ctx's cause. Because Commit, Cancel and purge remove the lock file, a
// lock taken on a file that is no longer at its name is dropped and taken
// again on the current one. When it returns a lock file, the caller also
// holds a blocking-operation slot, and releases it.
func (b *backend) lockUpload(ctx context.Context, dir string) (*os.File, error) {
	name := filepath.Join(dir, lockName)
	var lf *os.File
	retries := 0
	err := b.pollLock(ctx, dir, func() (bool, error) {
		for {
			if lf == nil {
				if err := b.j.MkdirAll(dir, dirPerm); err != nil {
					return false, err
				}
				f, err := b.j.OpenFile(name, os.O_RDWR|os.O_CREATE, filePerm)
				if err != nil {
					if errors.Is(err, fs.ErrNotExist) && retries < lockRetries {
						retries++
						continue // the folder was removed after MkdirAll
					}
					return false, err
				}
				lf = f
			}
			ok, err := tryFlock(lf, lockExclusive)
			if err != nil || !ok {
				return false, err
			}
			held, err1 := lf.Stat()
			cur, err2 := b.j.Stat(name)
			if err1 == nil && err2 == nil && os.SameFile(held, cur) {
				return true, nil
			}
			lf.Close() // the lock file was replaced: lock the current one
			lf = nil
			if err1 != nil {
				return false, err1
			}
			if err2 != nil && !errors.Is(err2, fs.ErrNotExist) {
				return false, err2
			}
			if retries++; retries >= lockRetries {
				return false, fmt.Errorf("filesystem: lock file %s kept being replaced", name)
			}
		}
	})
	if err != nil {
		if lf != nil {
			lf.Close()
		}
		return nil, err
	}
	return lf, nil
}

// uploadFiles returns the names of the data files in the upload folder dir,
// oldest session first, and of the copies (see copyPrefix) in it.
func (j *jail) uploadFiles(dir string) (data, copies []string, err error) {
	d, err := j.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range names {
		switch {
		case strings.HasPrefix(n, dataPrefix):
			data = append(data, n)
		case strings.HasPrefix(n, copyPrefix):
			copies = append(copies, n)
		}
	}
	sort.Strings(data)
	return data, copies, nil
}

// sessions returns the names of the data files in the upload folder dir,
// oldest session first.
func (j *jail) sessions(dir string) ([]string, error) {
	data, _, err := j.uploadFiles(dir)
	return data, err
}

// dropIfEmpty removes the lock file and the upload folder dir when no
// session and no copy is left in it. The caller holds the exclusive lock.
func (j *jail) dropIfEmpty(dir string) {
	data, copies, err := j.uploadFiles(dir)
	if err != nil || len(data)+len(copies) > 0 {
		return
	}
	j.Remove(filepath.Join(dir, lockName))
	j.Rmdir(dir)
}

// Writer implements driver.Backend. See the package doc for the session
// protocol. It waits for the upload's exclusive lock as pollLock does, and
// gives up with ctx's cause when ctx ends first.
func (b *backend) Writer(ctx context.Context, p string, append bool) (driver.FileWriter, error) {
	dir := b.uploadDir(p)
	lf, err := b.lockUpload(ctx, dir)
	if err != nil {
		return nil, classify(err)
	}
	defer b.release()
	w := &fileWriter{b: b, ctx: ctx, path: p, dir: dir, lf: lf}
	if err := w.open(append); err != nil {
		if w.f != nil {
			w.f.Close()
			if w.created {
				b.j.Remove(w.dataPath)
			}
		}
		b.j.dropIfEmpty(dir)
		lf.Close()
		return nil, err
	}
	if err := flock(lf, lockRelease); err != nil {
		w.f.Close()
		lf.Close()
		return nil, classify(err)
	}
	return w, nil
}

// open starts the writer's session, under the exclusive lock.
func (w *fileWriter) open(append bool) error {
	old, copies, err := w.b.j.uploadFiles(w.dir)
	if err != nil {
		return classify(err)
	}
	// Copies are only made under this lock: any found now was cut short by
	// a crash.
	for _, c := range copies {
		if err := w.b.j.Remove(filepath.Join(w.dir, c)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return classify(err)
		}
	}
	sid := newSessionID()
	w.dataPath = filepath.Join(w.dir, dataPrefix+sid)
	switch {
	case !append || len(old) > 0:
		if append {
			// Take the upload over: the live session's data becomes ours.
			live := old[len(old)-1]
			old = old[:len(old)-1]
			if err := w.b.j.Rename(filepath.Join(w.dir, live), w.dataPath); err != nil {
				return classify(err)
			}
			w.f, err = w.b.j.OpenFile(w.dataPath, os.O_WRONLY, 0)
			if err != nil {
				return classify(err)
			}
			if w.size, err = w.f.Seek(0, io.SeekEnd); err != nil {
				return classify(err)
			}
		} else {
			w.f, err = w.b.j.OpenFile(w.dataPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
			if err != nil {
				return classify(err)
			}
			w.created = true
		}
		// Older sessions (and any left by a crash) lose the upload.
		for _, s := range old {
			if err := w.b.j.Remove(filepath.Join(w.dir, s)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return classify(err)
			}
		}
	default:
		// No upload in progress: resume from the committed file, if any.
		src, err := w.b.j.Open(w.b.osPath(w.path))
		if err != nil {
			return classify(err)
		}
		defer src.Close()
		fi, err := src.Stat()
		if err != nil {
			return classify(err)
		}
		if !fi.Mode().IsRegular() {
			return driver.Errorf(driver.KindNotFound, "a folder, not a file")
		}
		if err := w.copyCommitted(src, filepath.Join(w.dir, copyPrefix+sid)); err != nil {
			return err
		}
	}
	w.id, err = w.f.Stat()
	return classify(err)
}

// copyCommitted makes the session's data file a copy of the committed file
// src: it copies into tmp (a copyPrefix name, which no resume takes for a
// session), fsyncs it, and only then renames it to the data file, so that a
// crash in the middle leaves no short session behind (the next writer
// removes the copy). The caller holds the exclusive lock.
func (w *fileWriter) copyCommitted(src *os.File, tmp string) error {
	f, err := w.b.j.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return classify(err)
	}
	// *os.File to *os.File: copy_file_range where the kernel has it.
	n, err := io.Copy(f, src)
	if err == nil {
		err = w.ctx.Err()
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = w.b.j.Rename(tmp, w.dataPath)
	}
	if err != nil {
		f.Close()
		w.b.j.Remove(tmp)
		return classify(err)
	}
	w.f, w.size, w.created = f, n, true
	return nil
}

// fileWriter writes one session of an upload.
//
// Ownership and the lease: the writer owns the upload while its data file
// is at its own name, and names change only under the exclusive flock of
// the upload's lock file. A Write takes the shared flock and checks the name
// once, then keeps the shared lock as a lease for up to leaseTime: while it
// is held no one can take the upload over, so the Writes in between need no
// system call besides write(2). A timer drops an idle lease, so a newer
// writer in another process waits at most leaseTime (plus one write) for
// its exclusive lock.
type fileWriter struct {
	b        *backend
	ctx      context.Context
	path     string      // driver path
	dir      string      // upload folder
	dataPath string      // the session's data file
	id       fs.FileInfo // identity of the data file
	size     int64
	created  bool // the session's data file was created (not taken over) by open

	mu     sync.Mutex // guards the fields below against the lease timer
	f      *os.File   // data file, nil once released
	lf     *os.File   // lock file, nil once released
	gate   *os.File   // the upload folder, for yieldToWaiters; opened when first needed
	held   bool       // the shared lock is held as a lease
	heldAt time.Time  // when the lease was taken
	// expired is set when a lease ran out: the next Write pauses for
	// leaseYield before taking a new one.
	expired bool
	timer   *time.Timer // drops the lease
}

const (
	// leaseTime is how long a writer keeps the shared lock between checks:
	// the longest a newer writer, Commit or Cancel elsewhere waits for an
	// active or idle writer of the same upload.
	leaseTime = 100 * time.Millisecond
	// leaseYield is how long a writer pauses between dropping an expired
	// lease and taking a new one, so that a waiting exclusive lock gets in
	// (flock grants a shared lock ahead of waiting exclusive ones). It costs
	// a streaming writer about 1% of its time.
	leaseYield = time.Millisecond
	// yieldMax bounds how long a writer renewing its lease waits for the
	// waiters of the exclusive lock (see yieldToWaiters): a waiter tries at
	// least every lockPollMax.
	yieldMax = 2 * lockPollMax
)

// errLost is returned by a writer whose upload was taken over by a newer
// writer, or committed, cancelled or purged elsewhere.
func errLost() error {
	return driver.Errorf(driver.KindConflict,
		"the upload was taken over by a newer writer of the same path (or committed, cancelled or purged)")
}

// owns reports whether the writer's data file is still at its name, that is,
// whether the writer still owns the upload. The caller holds the lock.
func (w *fileWriter) owns() bool {
	fi, err := w.b.j.Stat(w.dataPath)
	return err == nil && os.SameFile(fi, w.id)
}

// hold makes sure the writer holds a lease and still owns the upload. The
// caller holds w.mu.
func (w *fileWriter) hold() error {
	if w.held && time.Since(w.heldAt) < leaseTime {
		return nil // nobody could change names while we held the lease
	}
	if w.held {
		w.drop()
		w.expired = true
	}
	if w.expired {
		// Let a writer waiting for the exclusive lock in.
		time.Sleep(leaseYield)
		w.expired = false
		w.yieldToWaiters()
	}
	if err := flock(w.lf, lockShared); err != nil {
		return classify(err)
	}
	w.held, w.heldAt = true, time.Now()
	if !w.owns() {
		w.drop()
		return errLost()
	}
	if w.timer == nil {
		w.timer = time.AfterFunc(leaseTime, w.expire)
	} else {
		w.timer.Reset(leaseTime)
	}
	return nil
}

// yieldToWaiters pauses, between two leases, while someone waits for the
// upload's exclusive lock (a newer writer, a Commit, Cancel or purge: they
// hold a shared flock of the upload folder while they wait, see pollLock),
// so that one of them gets in; the caller's flock then waits for it. It
// gives up after yieldMax. The caller holds a slot, w.mu and no lease.
func (w *fileWriter) yieldToWaiters() {
	deadline := time.Now().Add(yieldMax)
	for w.othersWait() && time.Now().Before(deadline) {
		time.Sleep(leaseYield)
	}
}

// othersWait reports whether someone holds the shared flock of the upload
// folder, that is, waits for the exclusive lock. The caller holds w.mu.
func (w *fileWriter) othersWait() bool {
	if w.gate == nil {
		g, err := w.b.j.Open(w.dir)
		if err != nil {
			return false
		}
		w.gate = g
	}
	ok, err := tryFlock(w.gate, lockExclusive)
	if err != nil {
		return false
	}
	if ok {
		flock(w.gate, lockRelease)
	}
	return !ok
}

// drop releases the lease. The caller holds w.mu.
func (w *fileWriter) drop() {
	if w.held {
		flock(w.lf, lockRelease)
		w.held = false
	}
}

// expire is the lease timer: it drops a lease that was not renewed.
func (w *fileWriter) expire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.held {
		return
	}
	if left := leaseTime - time.Since(w.heldAt); left > 0 {
		w.timer.Reset(left) // renewed while this call waited for w.mu
		return
	}
	w.drop()
	w.expired = true
}

// stopLease stops the timer and forgets the lease, before the caller
// converts the lock to exclusive or closes the lock file. The caller holds
// w.mu.
func (w *fileWriter) stopLease() {
	if w.timer != nil {
		w.timer.Stop()
	}
	w.held = false
}

// Write writes p straight into the data file, in slices of at most
// writeSlice, so that a cancelled context stops it within one slice.
func (w *fileWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if err := w.ctx.Err(); err != nil {
			return n, err
		}
		m, err := w.writeSlice(p[:min(len(p), writeSlice)])
		n += m
		w.size += int64(m)
		if err != nil {
			return n, err
		}
		p = p[m:]
	}
	return n, nil
}

func (w *fileWriter) writeSlice(p []byte) (int, error) {
	if err := w.b.acquire(w.ctx); err != nil {
		return 0, err
	}
	defer w.b.release()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.hold(); err != nil {
		return 0, err
	}
	n, err := w.f.Write(p)
	if err != nil {
		return n, classify(err)
	}
	return n, nil
}

// Size implements driver.FileWriter.
func (w *fileWriter) Size() int64 { return w.size }

// Close persists what was written (fsync of the data file and its folder)
// and releases the files. After Commit or Cancel it only releases.
//
// Like Write, Commit and Cancel, it takes its slot before w.mu, never the
// other way round: the lease timer needs w.mu to drop the lease, and slot
// holders may be waiting for that lease.
func (w *fileWriter) Close() error {
	var err error
	if w.f != nil { // only the writer's own methods change w.f, never the timer
		if err = w.b.acquire(w.ctx); err == nil {
			defer w.b.release()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		if err == nil {
			err = w.ctx.Err()
		}
		if err == nil {
			err = w.persist()
		}
		if cerr := w.f.Close(); err == nil && cerr != nil {
			err = classify(cerr)
		}
		w.f = nil
	}
	if lerr := w.releaseLock(); err == nil {
		err = lerr
	}
	return err
}

// persist fsyncs the data and its folder, if the writer still owns the
// upload. The caller holds a slot and w.mu.
func (w *fileWriter) persist() error {
	if err := w.f.Sync(); err != nil {
		return classify(err)
	}
	if err := w.hold(); err != nil {
		return err
	}
	// The data file's name (created or renamed by this session) and the
	// upload's folder must survive a crash too.
	if err := w.b.j.syncDir(w.dir); err != nil {
		return err
	}
	return w.b.j.syncDir(filepath.Dir(w.dir))
}

// releaseLock closes the lock file, which drops any lock. The caller holds
// w.mu.
func (w *fileWriter) releaseLock() error {
	w.stopLease()
	if w.gate != nil {
		w.gate.Close()
		w.gate = nil
	}
	if w.lf == nil {
		return nil
	}
	err := w.lf.Close()
	w.lf = nil
	return classify(err)
}

// endLease releases the lease and stops its timer, before the caller waits
// for the exclusive lock. The caller holds w.mu.
func (w *fileWriter) endLease() {
	w.drop()
	w.stopLease()
}

// Commit fsyncs the data, then, under the exclusive lock and only if the
// writer still owns the upload, renames it onto the path and removes the
// upload's folder. It waits for the exclusive lock as pollLock does, giving
// up when ctx or the writer's context ends.
func (w *fileWriter) Commit(ctx context.Context) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	synced := false
	err := w.b.pollLock(ctx, w.dir, func() (bool, error) {
		if err := w.ctx.Err(); err != nil {
			return false, err
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if !synced {
			if err := w.f.Sync(); err != nil {
				return false, classify(err)
			}
			synced = true
			w.endLease()
		}
		ok, err := tryFlock(w.lf, lockExclusive)
		return ok, classify(err)
	})
	if err != nil {
		return err
	}
	defer w.b.release()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.owns() {
		flock(w.lf, lockRelease)
		return errLost()
	}
	if err := w.b.renameInto(w.dataPath, w.b.osPath(w.path)); err != nil {
		flock(w.lf, lockRelease)
		return err
	}
	w.f.Close()
	w.f = nil
	w.b.j.dropIfEmpty(w.dir)
	return w.releaseLock()
}

// closeData closes the data file and ends the lease. The caller holds w.mu
// (and a slot, but for a Cancel that never got one).
func (w *fileWriter) closeData() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	w.endLease()
}

// Cancel removes the session's data file and, when no other session is
// left, the lock file and the upload's folder. A writer that no longer owns
// the upload has nothing left to remove. It waits for the exclusive lock as
// pollLock does, giving up when ctx ends; when ctx has already ended, the
// cleanup still runs, waiting at most cancelGrace, so that no trace stays
// behind. A session left by a Cancel that gave up is removed by
// PurgeUploads.
func (w *fileWriter) Cancel(ctx context.Context) error {
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), cancelGrace)
		defer cancel()
	}
	err := w.b.pollLock(ctx, w.dir, func() (bool, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.closeData()
		ok, err := tryFlock(w.lf, lockExclusive)
		return ok, classify(err)
	})
	if err != nil {
		w.mu.Lock()
		w.closeData() // in case no attempt got a slot
		w.mu.Unlock()
		return err
	}
	defer w.b.release()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.owns() {
		if rerr := w.b.j.Remove(w.dataPath); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = classify(rerr)
		}
		w.b.j.dropIfEmpty(w.dir)
	}
	if lerr := w.releaseLock(); err == nil {
		err = lerr
	}
	return err
}

// PurgeUploads implements driver.UploadPurger: it removes the upload
// sessions whose data file was last written more than olderThan ago, the
// copies of a committed file that a crash cut short (whatever their age),
// and PutContent temporary files older than olderThan (left by a crash). It
// returns how many files it removed. It waits for each upload's lock as
// Writer does, and stops with ctx's cause when ctx ends. A writer whose
// session is purged fails its next Write with driver.ErrConflict.
func (b *backend) PurgeUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	n := 0
	ups, err := b.readDir(ctx, b.metaPath(uploadsDir))
	if err != nil {
		return 0, err
	}
	for _, u := range ups {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if !u.IsDir() {
			continue
		}
		m, err := b.purgeUpload(ctx, b.metaPath(uploadsDir, u.Name()), cutoff)
		n += m
		if err != nil {
			return n, classify(err)
		}
	}
	if err := b.acquire(ctx); err != nil {
		return n, err
	}
	defer b.release()
	tmps, err := b.j.ReadDir(b.metaPath(tmpDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return n, classify(err)
	}
	for _, t := range tmps {
		fi, err := t.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue
		}
		if err := b.j.Remove(b.metaPath(tmpDir, t.Name())); err == nil {
			n++
		}
	}
	return n, nil
}

// readDir reads a bookkeeping folder under a slot; a missing one is empty.
func (b *backend) readDir(ctx context.Context, dir string) ([]fs.DirEntry, error) {
	if err := b.acquire(ctx); err != nil {
		return nil, err
	}
	defer b.release()
	des, err := b.j.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, classify(err)
	}
	return des, nil
}

// purgeUpload removes the old sessions of one upload folder, and the copies
// a crash cut short (whatever their age: under the exclusive lock no copy is
// in progress).
func (b *backend) purgeUpload(ctx context.Context, dir string, cutoff time.Time) (int, error) {
	lf, err := b.lockUpload(ctx, dir)
	if err != nil {
		return 0, err
	}
	defer b.release()
	defer lf.Close()
	names, copies, err := b.j.uploadFiles(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range copies {
		if err := b.j.Remove(filepath.Join(dir, c)); err == nil {
			n++
		}
	}
	for _, s := range names {
		fi, err := b.j.Lstat(filepath.Join(dir, s))
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue
		}
		if err := b.j.Remove(filepath.Join(dir, s)); err == nil {
			n++
		}
	}
	b.j.dropIfEmpty(dir)
	return n, nil
}

// ListUploads implements driver.UploadLister: it reports what
// PurgeUploads(ctx, olderThan) would remove now, without removing or
// locking anything: upload sessions whose data file was last written more
// than olderThan ago, copies of a committed file that a crash cut short
// (any age; a copy still in progress is listed too, and PurgeUploads, which
// waits for its lock, would find it gone), and PutContent temporary files
// older than olderThan. Paths are not known (upload folders are named by a
// hash of the path), so each upload is named by its folder and file.
func (b *backend) ListUploads(ctx context.Context, olderThan time.Duration, fn func(driver.UploadInfo) error) error {
	cutoff := time.Now().Add(-olderThan)
	ups, err := b.readDir(ctx, b.metaPath(uploadsDir))
	if err != nil {
		return err
	}
	for _, u := range ups {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !u.IsDir() {
			continue
		}
		found, err := b.listUpload(ctx, u.Name(), cutoff)
		if err != nil {
			return err
		}
		for _, f := range found {
			if err := fn(f); err != nil {
				return err
			}
		}
	}
	tmps, err := b.readDir(ctx, b.metaPath(tmpDir))
	if err != nil {
		return err
	}
	for _, t := range tmps {
		fi, err := t.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue
		}
		if err := fn(driver.UploadInfo{ID: tmpDir + "/" + t.Name(), Started: fi.ModTime(), Size: fi.Size()}); err != nil {
			return err
		}
	}
	return nil
}

// listUpload returns what PurgeUploads would remove of the upload folder
// name, under a blocking-operation slot.
func (b *backend) listUpload(ctx context.Context, name string, cutoff time.Time) ([]driver.UploadInfo, error) {
	if err := b.acquire(ctx); err != nil {
		return nil, err
	}
	defer b.release()
	dir := b.metaPath(uploadsDir, name)
	data, copies, err := b.j.uploadFiles(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // finished since the listing
	}
	if err != nil {
		return nil, classify(err)
	}
	var out []driver.UploadInfo
	for _, f := range append(copies, data...) {
		fi, err := b.j.Lstat(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		if strings.HasPrefix(f, dataPrefix) && !fi.ModTime().Before(cutoff) {
			continue
		}
		out = append(out, driver.UploadInfo{ID: uploadsDir + "/" + name + "/" + f, Started: fi.ModTime(), Size: fi.Size()})
	}
	return out, nil
}

// The backend lists what PurgeUploads would remove (stowage purge-uploads --dry-run).
var _ driver.UploadLister = (*backend)(nil)
