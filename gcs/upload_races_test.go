package gcs

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"cloud.google.com/go/storage"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// Regression tests for writers that overlap on one upload, for a failed
// composite Commit, for Delete of a path with an upload in progress, and for
// session URIs in errors.

// recordDeletes records the URL of every DELETE request. fake-gcs-server
// ignores a DELETE of a resumable session URI (the real service cancels the
// session), so the resumable variants check that no such request is sent.
func recordDeletes(ctx context.Context) (context.Context, func() []string) {
	var mu sync.Mutex
	var urls []string
	ctx = driver.WithTransport(ctx, func(base http.RoundTripper) http.RoundTripper {
		return testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodDelete {
				mu.Lock()
				urls = append(urls, r.URL.String())
				mu.Unlock()
			}
			return base.RoundTrip(r)
		})
	})
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), urls...)
	}
}

// checkSessionAlive fails if the session or a segment recorded in p's
// placeholder was cancelled or deleted (a DELETE on its URI or name).
func checkSessionAlive(t *testing.T, ctx context.Context, b *backend, p string, deleted func() []string) {
	t.Helper()
	st, _, err := b.readState(ctx, p)
	if err != nil {
		t.Fatalf("placeholder of %s: %v", p, err)
	}
	if st.Session == "" && len(st.Segments) == 0 && st.Mode == ModeResumable {
		t.Fatalf("placeholder of %s records no session or segment: the test wrote too little", p)
	}
	segs := b.segmentNames(p, st)
	for _, u := range deleted() {
		if st.Session != "" && u == st.Session {
			t.Fatalf("the session of the acknowledged upload was cancelled (DELETE %s)", u)
		}
		for _, name := range segs {
			if strings.Contains(u, url.PathEscape(name)) {
				t.Fatalf("a segment of the acknowledged upload was deleted (DELETE %s)", u)
			}
		}
	}
	for _, name := range segs {
		if _, err := b.bucket.Object(name).Attrs(ctx); err != nil {
			t.Fatalf("segment %s of the acknowledged upload: %v", name, err)
		}
	}
}

// startUpload writes data through a new writer of p and closes it.
func startUpload(t *testing.T, ctx context.Context, d driver.Driver, p string, data []byte) {
	t.Helper()
	w, err := d.Writer(ctx, p, false)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, data)
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// commitResumed resumes p, checks its Size, commits and checks the content.
func commitResumed(t *testing.T, ctx context.Context, d driver.Driver, p string, want []byte) {
	t.Helper()
	w, err := d.Writer(ctx, p, true)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if w.Size() != int64(len(want)) {
		t.Fatalf("Size = %d, want %d", w.Size(), len(want))
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit of the acknowledged upload: %v", err)
	}
	_ = w.Close()
	checkContent(t, ctx, d, p, want)
}

// TestStaleResumeCloseKeepsUpload: two resumes of one upload overlap (a
// registry's upload-status GET overlapping a PATCH). The PATCH closes
// first and is acknowledged; the status writer's Close (it wrote nothing)
// then changes nothing, and must not cancel the session or delete the parts
// that the PATCH's Close recorded.
func TestStaleResumeCloseKeepsUpload(t *testing.T) {
	for _, mode := range []string{ModeResumable, ModeComposite} {
		t.Run(mode, func(t *testing.T) {
			ctx, deleted := recordDeletes(t.Context())
			d, b := openTest(t, ctx, mode, 256<<10)
			a := seeded(t, 3*256<<10+100)
			startUpload(t, ctx, d, "/u/data", a)
			status, err := d.Writer(ctx, "/u/data", true)
			if err != nil {
				t.Fatal(err)
			}
			patch, err := d.Writer(ctx, "/u/data", true)
			if err != nil {
				t.Fatal(err)
			}
			c := seeded(t, 256<<10+1000) // one more whole chunk, and a tail
			mustWrite(t, patch, c)
			if err := patch.Close(); err != nil {
				t.Fatalf("PATCH Close: %v", err)
			}
			if err := status.Close(); err != nil {
				t.Fatalf("status Close (nothing written) after the PATCH's: %v", err)
			}
			checkSessionAlive(t, ctx, b, "/u/data", deleted)
			commitResumed(t, ctx, d, "/u/data", append(a, c...))
			if h := hiddenObjects(t, ctx, b); len(h) != 0 {
				t.Errorf("left %v", h)
			}
		})
	}
}

// TestStaleResumeFencedBeforeSession: when the upload had no session yet,
// of two resumes that both write, the one that writes second is fenced out
// by the first one's claim: its Write fails with ErrConflict before it
// creates a session of its own, and its Close leaves the upload (and the
// session the placeholder records) alone.
func TestStaleResumeFencedBeforeSession(t *testing.T) {
	ctx, deleted := recordDeletes(t.Context())
	var sessionsCreated atomic.Int32
	ctx = driver.WithTransport(ctx, func(base http.RoundTripper) http.RoundTripper {
		return testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := base.RoundTrip(r)
			if r.Method == http.MethodPost && r.URL.Query().Get("uploadType") == "resumable" && err == nil {
				sessionsCreated.Add(1)
			}
			return resp, err
		})
	})
	d, b := openTest(t, ctx, ModeResumable, 256<<10)
	a := seeded(t, 1000) // below one chunk: no session yet
	startUpload(t, ctx, d, "/s", a)
	first, err := d.Writer(ctx, "/s", true)
	if err != nil {
		t.Fatal(err)
	}
	second, err := d.Writer(ctx, "/s", true)
	if err != nil {
		t.Fatal(err)
	}
	c := seeded(t, 256<<10+10)
	mustWrite(t, first, c)
	if _, err := second.Write(seeded(t, 256<<10+20)); !errors.Is(err, driver.ErrConflict) {
		t.Fatalf("second resumed writer's Write after the first one wrote: %v, want a conflict", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	_ = second.Close()
	if n := sessionsCreated.Load(); n != 1 {
		t.Errorf("%d resumable sessions created, want 1 (the fenced writer sends nothing)", n)
	}
	checkSessionAlive(t, ctx, b, "/s", deleted)
	sessionDeletes := 0
	for _, u := range deleted() {
		if strings.Contains(u, "upload_id=") {
			sessionDeletes++
		}
	}
	if sessionDeletes != 0 {
		t.Errorf("%d session DELETEs, want 0 (the fenced writer created no session)", sessionDeletes)
	}
	commitResumed(t, ctx, d, "/s", append(a, c...))
}

// TestStaleResumeCancelRemovesUpload: a writer that resumed before another
// resume's Close cancels the upload. The upload (the same one) is gone
// entirely: no placeholder is left that promises a Size whose session and
// parts were removed.
func TestStaleResumeCancelRemovesUpload(t *testing.T) {
	for _, mode := range []string{ModeResumable, ModeComposite} {
		t.Run(mode, func(t *testing.T) {
			ctx := t.Context()
			d, b := openTest(t, ctx, mode, 256<<10)
			startUpload(t, ctx, d, "/c", seeded(t, 3*256<<10+100))
			stale, err := d.Writer(ctx, "/c", true)
			if err != nil {
				t.Fatal(err)
			}
			patch, err := d.Writer(ctx, "/c", true)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, patch, seeded(t, 500))
			if err := patch.Close(); err != nil {
				t.Fatalf("PATCH Close: %v", err)
			}
			if err := stale.Cancel(ctx); err != nil {
				t.Fatalf("Cancel: %v", err)
			}
			_ = stale.Close()
			if _, err := d.Writer(ctx, "/c", true); !errors.Is(err, driver.ErrNotFound) {
				t.Fatalf("resume after Cancel: %v, want not found", err)
			}
			if h := hiddenObjects(t, ctx, b); len(h) != 0 {
				t.Errorf("Cancel left %v", h)
			}
		})
	}
}

// TestCommitRetryAfterFailedCompose: a composite Commit whose compose
// fails (at the first level of a two-level compose, or at the final one)
// keeps the parts the placeholder records and removes every intermediate,
// so the client's retried PUT resumes with the exact Size and commits.
func TestCommitRetryAfterFailedCompose(t *testing.T) {
	for _, tc := range []struct {
		name      string
		finalOnly bool
	}{{"first level", false}, {"final", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var fail atomic.Bool
			ctx := driver.WithTransport(t.Context(), failCompose(&fail, tc.finalOnly))
			d, b := openTest(t, ctx, ModeComposite, 256<<10)
			data := seeded(t, 40*256<<10+77) // 41 parts with the tail: two levels
			startUpload(t, ctx, d, "/z", data)
			w, err := d.Writer(ctx, "/z", true)
			if err != nil {
				t.Fatal(err)
			}
			fail.Store(true)
			if err := w.Commit(ctx); err == nil {
				t.Fatal("Commit succeeded with compose failing")
			}
			_ = w.Close()
			fail.Store(false)
			parts, intermediates := hiddenParts(t, ctx, b)
			if len(intermediates) != 0 {
				t.Errorf("the failed Commit left intermediates %v", intermediates)
			}
			if len(parts) < 40 {
				t.Errorf("the failed Commit left %d parts, want at least the 40 recorded", len(parts))
			}
			if _, err := d.Stat(ctx, "/z"); !errors.Is(err, driver.ErrNotFound) {
				t.Errorf("Stat after the failed Commit: %v, want not found", err)
			}
			commitResumed(t, ctx, d, "/z", data)
			if h := hiddenObjects(t, ctx, b); len(h) != 0 {
				t.Errorf("left %v", h)
			}
		})
	}
}

// TestDeleteKeepsOwnUpload: Delete of a path that has only an upload in
// progress is not found and leaves that upload resumable and committable;
// Delete of a folder still removes the uploads in progress below it, and
// keeps the folder path's own upload.
func TestDeleteKeepsOwnUpload(t *testing.T) {
	for _, mode := range []string{ModeResumable, ModeComposite} {
		t.Run(mode, func(t *testing.T) {
			ctx := t.Context()
			d, b := openTest(t, ctx, mode, 256<<10)
			a := seeded(t, 3*256<<10+100)
			startUpload(t, ctx, d, "/f", a)
			if err := d.Delete(ctx, "/f"); !errors.Is(err, driver.ErrNotFound) {
				t.Fatalf("Delete of an uncommitted path: %v, want not found", err)
			}
			commitResumed(t, ctx, d, "/f", a)

			// A folder /g with a file and an upload in progress below it,
			// and an upload of /g itself.
			own := seeded(t, 2*256<<10+5)
			startUpload(t, ctx, d, "/g", own)
			startUpload(t, ctx, d, "/g/sub/up", seeded(t, 2*256<<10+9))
			if err := d.PutContent(ctx, "/g/file", []byte("x")); err != nil {
				t.Fatal(err)
			}
			if err := d.Delete(ctx, "/g"); err != nil {
				t.Fatalf("Delete(/g): %v", err)
			}
			if _, err := d.Writer(ctx, "/g/sub/up", true); !errors.Is(err, driver.ErrNotFound) {
				t.Errorf("resume of an upload below a deleted folder: %v, want not found", err)
			}
			for _, h := range hiddenObjects(t, ctx, b) {
				if strings.Contains(h, "/g/sub") {
					t.Errorf("Delete(/g) left %s", h)
				}
			}
			commitResumed(t, ctx, d, "/g", own)
		})
	}
}

// hookConditionalWrite returns a transport hook that runs the function set
// in hook (once) just before (after false) or just after (after true) the
// next conditional one-request upload: a placeholder write.
func hookConditionalWrite(hook *atomic.Pointer[func()], after bool) func(http.RoundTripper) http.RoundTripper {
	return func(base http.RoundTripper) http.RoundTripper {
		return testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method != http.MethodPost || !strings.Contains(r.URL.Path, "/upload/") ||
				!strings.Contains(r.URL.RawQuery, "ifGenerationMatch") {
				return base.RoundTrip(r)
			}
			f := hook.Swap(nil)
			if f != nil && !after {
				(*f)()
			}
			resp, err := base.RoundTrip(r)
			if f != nil && after {
				(*f)()
			}
			return resp, err
		})
	}
}

// TestLosingNewWriterKeepsUpload: a new Writer(path, false) reads the
// placeholder, and before its own placeholder write an older writer of the
// path closes (acknowledged). The new writer loses with a conflict and must
// not have cancelled the session or deleted the parts of that upload.
func TestLosingNewWriterKeepsUpload(t *testing.T) {
	for _, mode := range []string{ModeResumable, ModeComposite} {
		t.Run(mode, func(t *testing.T) {
			var hook atomic.Pointer[func()]
			ctx0, deleted := recordDeletes(t.Context())
			ctx := driver.WithTransport(ctx0, hookConditionalWrite(&hook, false))
			d, b := openTest(t, ctx, mode, 256<<10)
			a := seeded(t, 3*256<<10+100)
			startUpload(t, ctx, d, "/n", a)
			old, err := d.Writer(ctx, "/n", true)
			if err != nil {
				t.Fatal(err)
			}
			c := seeded(t, 256<<10+500)
			mustWrite(t, old, c)
			var oldClose error
			f := func() { oldClose = old.Close() }
			hook.Store(&f)
			if _, err := d.Writer(ctx, "/n", false); !errors.Is(err, driver.ErrConflict) {
				t.Fatalf("new Writer after the older writer's Close won: %v, want a conflict", err)
			}
			if oldClose != nil {
				t.Fatalf("older writer's Close: %v", oldClose)
			}
			checkSessionAlive(t, ctx, b, "/n", deleted)
			commitResumed(t, ctx, d, "/n", append(a, c...))
		})
	}
}

// TestNewWriterKeepsNewerUploadParts: a new Writer(path, false) wins the
// placeholder, and before it cleans up the superseded uploads, a newer
// Writer(path, false) takes over and stores parts. The first one's cleanup
// removes the upload both replaced, and must not delete the newer upload's
// parts.
func TestNewWriterKeepsNewerUploadParts(t *testing.T) {
	var hook atomic.Pointer[func()]
	ctx := driver.WithTransport(t.Context(), hookConditionalWrite(&hook, true))
	d, b := openTest(t, ctx, ModeComposite, 256<<10)
	startUpload(t, ctx, d, "/m", seeded(t, 3*256<<10+100))
	newer := seeded(t, 3*256<<10+7)
	var newerErr error
	f := func() {
		// Runs right after the first new writer's placeholder write.
		w, err := d.Writer(ctx, "/m", false)
		if err != nil {
			newerErr = err
			return
		}
		if _, err := w.Write(newer); err != nil {
			newerErr = err
			return
		}
		newerErr = w.Close()
	}
	hook.Store(&f)
	first, err := d.Writer(ctx, "/m", false)
	if err != nil {
		t.Fatalf("first new Writer: %v", err)
	}
	if newerErr != nil {
		t.Fatalf("newer Writer: %v", newerErr)
	}
	if err := first.Close(); !errors.Is(err, driver.ErrConflict) {
		t.Fatalf("Close of the superseded first writer: %v, want a conflict", err)
	}
	parts, _ := hiddenParts(t, ctx, b)
	if len(parts) != 3 {
		t.Errorf("%d parts stored, want the newer upload's 3: %v", len(parts), parts)
	}
	commitResumed(t, ctx, d, "/m", newer)
	if h := hiddenObjects(t, ctx, b); len(h) != 0 {
		t.Errorf("left %v", h)
	}
}

// TestSessionURIRedactedInErrors: a resumable session URI is a bearer
// credential (whoever holds it can send data to the upload), but the HTTP
// client's errors quote the URL they failed on. A chunk that fails on a
// reset connection, and a Cancel whose session DELETE fails the same way,
// must return errors that still name the operation and the cause (and are
// still ErrUnavailable) without the session URI.
func TestSessionURIRedactedInErrors(t *testing.T) {
	var fail atomic.Bool
	var mu sync.Mutex
	var session string
	ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
		return testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			if !strings.Contains(r.URL.RawQuery, "upload_id=") {
				return base.RoundTrip(r)
			}
			mu.Lock()
			session = r.URL.String()
			mu.Unlock()
			if fail.Load() {
				return nil, testkit.ConnReset(r)
			}
			return base.RoundTrip(r)
		})
	})
	d, _ := openTest(t, ctx, ModeResumable, 256<<10)
	w, err := d.Writer(ctx, "/s", false)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, seeded(t, 256<<10+10)) // the first chunk creates the session
	fail.Store(true)
	// The chunk goes up in the background: its error comes from this Write
	// or from the next call.
	what := "Write"
	_, err = w.Write(seeded(t, 256<<10))
	if err == nil {
		what, err = "Commit", w.Commit(ctx)
	}
	mu.Lock()
	uri := session
	mu.Unlock()
	u, perr := url.Parse(uri)
	if perr != nil || u.Query().Get("upload_id") == "" {
		t.Fatalf("no session request seen (%q)", uri)
	}
	id := u.Query().Get("upload_id")
	check := func(what string, err error) {
		t.Helper()
		t.Logf("%s: %v", what, err)
		if err == nil {
			t.Fatalf("%s succeeded with every session request failing", what)
		}
		if strings.Contains(err.Error(), id) || strings.Contains(err.Error(), "upload_id") {
			t.Errorf("%s: the error exposes the session URI: %v", what, err)
		}
		if !errors.Is(err, driver.ErrUnavailable) || !strings.Contains(err.Error(), "connection reset") {
			t.Errorf("%s: %v, want ErrUnavailable with its cause", what, err)
		}
	}
	check(what, err)
	_ = w.Close()
	// Cancel of an upload whose placeholder records a session (as an
	// older version of the backend wrote it).
	fail.Store(false)
	startUpload(t, ctx, d, "/s2", seeded(t, 256<<10+10))
	b := driver.BackendOf(d).(*backend)
	data, gen, err := b.readPlaceholder(ctx, "/s2")
	if err != nil {
		t.Fatal(err)
	}
	st, tail, err := decodeState(data)
	if err != nil {
		t.Fatal(err)
	}
	if st.Session, err = b.createSession(ctx, b.sessionObject("/s2", st.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.writePlaceholder(ctx, "/s2", st, tail, storage.Conditions{GenerationMatch: gen}); err != nil {
		t.Fatal(err)
	}
	w2, err := d.Writer(ctx, "/s2", true)
	if err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	check("Cancel", w2.Cancel(ctx))
	_ = w2.Close()
}

// TestSessionErrorsRedacted checks the raw session calls against a server
// that drops every connection, and a session URI that can not be parsed:
// no error quotes the URI's secret part.
func TestSessionErrorsRedacted(t *testing.T) {
	const secret = "SECRET-upload-id"
	drop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			_ = conn.Close()
		}
	})
	b, uri := fakeBackend(t, drop)
	uri += "?upload_type=resumable&upload_id=" + secret
	ctx := t.Context()
	errs := map[string]error{}
	_, errs["sendChunk"] = b.sendChunk(ctx, uri, make([]byte, chunkUnit), 0, -1)
	_, _, errs["queryStatus"] = b.queryStatus(ctx, uri, -1)
	errs["cancelSession"] = b.cancelSession(ctx, uri)
	bad := uri + "\x7f" // a control character: the URI does not parse
	_, errs["sendChunk, bad URI"] = b.sendChunk(ctx, bad, make([]byte, chunkUnit), 0, -1)
	errs["cancelSession, bad URI"] = b.cancelSession(ctx, bad)
	host := strings.TrimPrefix(strings.SplitN(uri, "/session", 2)[0], "http://")
	for what, err := range errs {
		t.Logf("%s: %v", what, err)
		if err == nil {
			t.Errorf("%s succeeded against a server that drops every connection", what)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error exposes the session URI: %v", what, err)
		}
		if !strings.Contains(what, "bad URI") && !strings.Contains(err.Error(), host) {
			t.Errorf("%s: the error lost the host %s: %v", what, host, err)
		}
	}
}

// TestStatusCloseKeepsPatchGoing: a registry status request resumes an
// upload and closes it without writing while a PATCH of the same upload is
// writing. The status request's Close must not change the placeholder, or
// the PATCH's next chunk or its Close would fail.
func TestStatusCloseKeepsPatchGoing(t *testing.T) {
	for _, mode := range []string{ModeResumable, ModeComposite} {
		t.Run(mode, func(t *testing.T) {
			ctx := t.Context()
			d, _ := openTest(t, ctx, mode, 256<<10)
			a := seeded(t, 256<<10+100)
			startUpload(t, ctx, d, "/u/data", a)
			patch, err := d.Writer(ctx, "/u/data", true)
			if err != nil {
				t.Fatal(err)
			}
			c := seeded(t, 2*256<<10+1000)
			mustWrite(t, patch, c[:1000])
			status, err := d.Writer(ctx, "/u/data", true)
			if err != nil {
				t.Fatal(err)
			}
			if err := status.Close(); err != nil {
				t.Fatalf("status Close: %v", err)
			}
			mustWrite(t, patch, c[1000:])
			if err := patch.Close(); err != nil {
				t.Fatalf("PATCH Close after a status request's Close: %v", err)
			}
			commitResumed(t, ctx, d, "/u/data", append(a, c...))
		})
	}
}
