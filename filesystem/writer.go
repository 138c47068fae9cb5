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
	"syscall"
	"time"

	"github.com/stowage/stowage/driver"
)

const (
	// lockName is the flock target in an upload's folder.
	lockName = "lock"
	// dataPrefix starts the name of a session's data file; the session id
	// follows.
	dataPrefix = "data-"
	// lockRetries bounds how often lockUpload reopens a lock file that was
	// removed while it waited.
	lockRetries = 1000
)

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
func (b *Backend) uploadDir(p string) string {
	sum := sha256.Sum256([]byte(p))
	return b.metaPath(uploadsDir, hex.EncodeToString(sum[:]))
}

// lockUpload opens the lock file of the upload folder dir (creating both)
// and takes an exclusive flock on it. Because Commit, Cancel and purge remove
// the lock file, a lock taken on a file that is no longer at its name is
// dropped and taken again on the current one.
func (b *Backend) lockUpload(dir string) (*os.File, error) {
	name := filepath.Join(dir, lockName)
	for range lockRetries {
		if err := os.MkdirAll(dir, dirPerm); err != nil {
			return nil, err
		}
		lf, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, filePerm)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // the folder was removed after MkdirAll
			}
			return nil, err
		}
		if err := flock(lf, lockExclusive); err != nil {
			lf.Close()
			return nil, err
		}
		held, err1 := lf.Stat()
		cur, err2 := os.Stat(name)
		if err1 == nil && err2 == nil && os.SameFile(held, cur) {
			return lf, nil
		}
		lf.Close()
		if err1 != nil {
			return nil, err1
		}
		if err2 != nil && !errors.Is(err2, fs.ErrNotExist) {
			return nil, err2
		}
	}
	return nil, fmt.Errorf("filesystem: lock file %s kept being replaced", name)
}

// sessions returns the names of the data files in the upload folder dir,
// oldest session first.
func sessions(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	out := names[:0]
	for _, n := range names {
		if strings.HasPrefix(n, dataPrefix) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// dropIfEmpty removes the lock file and the upload folder dir when no
// session is left in it. The caller holds the exclusive lock.
func dropIfEmpty(dir string) {
	s, err := sessions(dir)
	if err != nil || len(s) > 0 {
		return
	}
	os.Remove(filepath.Join(dir, lockName))
	syscall.Rmdir(dir)
}

// Writer implements driver.Backend. See the package doc for the session
// protocol.
func (b *Backend) Writer(ctx context.Context, p string, append bool) (driver.FileWriter, error) {
	if err := b.acquire(ctx); err != nil {
		return nil, err
	}
	defer b.release()
	dir := b.uploadDir(p)
	lf, err := b.lockUpload(dir)
	if err != nil {
		return nil, classify(err)
	}
	w := &fileWriter{b: b, ctx: ctx, path: p, dir: dir, lf: lf}
	if err := w.open(append); err != nil {
		if w.f != nil {
			w.f.Close()
			if w.created {
				os.Remove(w.dataPath)
			}
		}
		dropIfEmpty(dir)
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
	old, err := sessions(w.dir)
	if err != nil {
		return classify(err)
	}
	w.dataPath = filepath.Join(w.dir, dataPrefix+newSessionID())
	switch {
	case !append || len(old) > 0:
		if append {
			// Take the upload over: the live session's data becomes ours.
			live := old[len(old)-1]
			old = old[:len(old)-1]
			if err := os.Rename(filepath.Join(w.dir, live), w.dataPath); err != nil {
				return classify(err)
			}
			w.f, err = os.OpenFile(w.dataPath, os.O_WRONLY, 0)
			if err != nil {
				return classify(err)
			}
			if w.size, err = w.f.Seek(0, io.SeekEnd); err != nil {
				return classify(err)
			}
		} else {
			w.f, err = os.OpenFile(w.dataPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
			if err != nil {
				return classify(err)
			}
			w.created = true
		}
		// Older sessions (and any left by a crash) lose the upload.
		for _, s := range old {
			if err := os.Remove(filepath.Join(w.dir, s)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return classify(err)
			}
		}
	default:
		// No upload in progress: resume from the committed file, if any.
		src, err := os.Open(w.b.osPath(w.path))
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
		w.f, err = os.OpenFile(w.dataPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
		if err != nil {
			return classify(err)
		}
		w.created = true
		// *os.File to *os.File: copy_file_range where the kernel has it.
		if w.size, err = io.Copy(w.f, src); err != nil {
			return classify(err)
		}
		if err := w.ctx.Err(); err != nil {
			return err
		}
	}
	w.id, err = w.f.Stat()
	return classify(err)
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
	b        *Backend
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
	fi, err := os.Stat(w.dataPath)
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
func (w *fileWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var err error
	if w.f != nil {
		err = w.ctx.Err()
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
// upload. The caller holds w.mu.
func (w *fileWriter) persist() error {
	if err := w.b.acquire(w.ctx); err != nil {
		return err
	}
	defer w.b.release()
	if err := w.f.Sync(); err != nil {
		return classify(err)
	}
	if err := w.hold(); err != nil {
		return err
	}
	// The data file's name (created or renamed by this session) and the
	// upload's folder must survive a crash too.
	if err := syncDir(w.dir); err != nil {
		return err
	}
	return syncDir(filepath.Dir(w.dir))
}

// releaseLock closes the lock file, which drops any lock. The caller holds
// w.mu.
func (w *fileWriter) releaseLock() error {
	w.stopLease()
	if w.lf == nil {
		return nil
	}
	err := w.lf.Close()
	w.lf = nil
	return classify(err)
}

// Commit fsyncs the data, then, under the exclusive lock and only if the
// writer still owns the upload, renames it onto the path and removes the
// upload's folder.
func (w *fileWriter) Commit(ctx context.Context) error {
	if err := w.b.acquire(ctx); err != nil {
		return err
	}
	defer w.b.release()
	if err := w.ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.f.Sync(); err != nil {
		return classify(err)
	}
	w.stopLease()
	if err := flock(w.lf, lockExclusive); err != nil {
		return classify(err)
	}
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
	dropIfEmpty(w.dir)
	return w.releaseLock()
}

// Cancel removes the session's data file and, when no other session is
// left, the lock file and the upload's folder. A writer that no longer owns
// the upload has nothing left to remove. Cleanup runs even when ctx is
// already cancelled, so that no trace stays behind.
func (w *fileWriter) Cancel(ctx context.Context) error {
	if err := w.b.acquire(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	defer w.b.release()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.f.Close()
	w.f = nil
	w.stopLease()
	if err := flock(w.lf, lockExclusive); err != nil {
		return classify(err)
	}
	var err error
	if w.owns() {
		if rerr := os.Remove(w.dataPath); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = classify(rerr)
		}
		dropIfEmpty(w.dir)
	}
	if lerr := w.releaseLock(); err == nil {
		err = lerr
	}
	return err
}

// PurgeUploads implements driver.UploadPurger: it removes the upload
// sessions whose data file was last written more than olderThan ago, and
// PutContent temporary files as old (left by a crash). It returns how many
// it removed. A writer whose session is purged fails its next Write with
// driver.ErrConflict.
func (b *Backend) PurgeUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	if err := b.acquire(ctx); err != nil {
		return 0, err
	}
	defer b.release()
	cutoff := time.Now().Add(-olderThan)
	n := 0
	ups, err := os.ReadDir(b.metaPath(uploadsDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, classify(err)
	}
	for _, u := range ups {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if !u.IsDir() {
			continue
		}
		dir := b.metaPath(uploadsDir, u.Name())
		m, err := purgeUpload(b, dir, cutoff)
		n += m
		if err != nil {
			return n, classify(err)
		}
	}
	tmps, err := os.ReadDir(b.metaPath(tmpDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return n, classify(err)
	}
	for _, t := range tmps {
		fi, err := t.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(b.metaPath(tmpDir, t.Name())); err == nil {
			n++
		}
	}
	return n, nil
}

// purgeUpload removes the old sessions of one upload folder.
func purgeUpload(b *Backend, dir string, cutoff time.Time) (int, error) {
	lf, err := b.lockUpload(dir)
	if err != nil {
		return 0, err
	}
	defer lf.Close()
	names, err := sessions(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range names {
		fi, err := os.Lstat(filepath.Join(dir, s))
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, s)); err == nil {
			n++
		}
	}
	dropIfEmpty(dir)
	return n, nil
}
