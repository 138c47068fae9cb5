package gcs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/stowage/stowage/chunk"
	"github.com/stowage/stowage/driver"
)

// Raw JSON-API calls for resumable upload sessions: the client library
// offers no way to create a session whose URI the caller keeps, to send a
// chunk at a given offset of an existing session, to query a session's
// status, or to cancel a session by URI.
//
// A session URI is a bearer credential: whoever holds it can send data to
// the session without other authentication. It is kept only in the upload's
// placeholder, and every error of a call on it goes through redactSession
// (the HTTP client's *url.Error quotes the URL it failed on).

// errLostAnswer marks a chunk whose answer did not say how much the session
// persisted; the caller asks the session with a status query.
var errLostAnswer = errors.New("gcs: session answer lost or incomplete")

// objectResource is the part of the JSON API's object resource that the
// backend reads.
type objectResource struct {
	Name       string `json:"name"`
	Generation string `json:"generation"`
	Size       string `json:"size"`
	CRC32C     string `json:"crc32c"`
}

// createSession starts a resumable upload session for object name and
// returns its URI.
func (b *backend) createSession(ctx context.Context, name string) (string, error) {
	u := b.apiBase + "/upload/storage/v1/b/" + url.PathEscape(b.cfg.Bucket) + "/o?uploadType=resumable&name=" + url.QueryEscape(name)
	var loc string
	err := chunk.Retry(ctx, b.retry, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader("{}"))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
		req.Header.Set("X-Upload-Content-Type", "application/octet-stream")
		resp, err := b.hc.Do(req)
		if err != nil {
			return err
		}
		defer drain(resp)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
			return respError(resp)
		}
		loc = resp.Header.Get("Location")
		if loc == "" {
			return &httpError{Status: resp.StatusCode, Body: "resumable session created without a Location"}
		}
		return nil
	})
	if err != nil {
		return "", classify(err)
	}
	return loc, nil
}

// sendChunk sends data at offset start of the session. total is the size of
// the whole object when data is the last chunk (the session is then
// finalised and the object resource returned), or -1. A chunk whose answer
// is lost (a network error, a server error) is recovered with a status
// query: the session says how much it persisted, and only the rest is sent
// again. fake-gcs-server answers a status query by finalising the object,
// so that path runs only after a failure, never in the normal path.
func (b *backend) sendChunk(ctx context.Context, uri string, data []byte, start, total int64) (*objectResource, error) {
	end := start + int64(len(data))
	sent := start // offset the next attempt starts at
	var obj *objectResource
	err := chunk.Retry(ctx, b.retry, func(ctx context.Context) error {
		persisted, o, err := b.putChunk(ctx, uri, data[sent-start:], sent, total)
		if err == nil {
			if o != nil || total < 0 && persisted >= end {
				obj = o
				return nil
			}
			if persisted < 0 {
				// 308 without a Range: nothing of this chunk landed.
				persisted = sent
			}
		} else {
			if !retryable(err) {
				return err
			}
			var qerr error
			persisted, o, qerr = b.queryStatus(ctx, uri, total)
			if qerr != nil {
				return err // retry the same send
			}
			if o != nil {
				obj = o
				return nil
			}
		}
		if persisted < start || persisted > end {
			return driver.Errorf(driver.KindCorrupt, "resumable session persisted %d bytes, want %d..%d", persisted, start, end)
		}
		sent = persisted
		if total < 0 && sent == end {
			return nil
		}
		if err == nil {
			err = errLostAnswer
		}
		return err
	})
	return obj, classify(err)
}

// putChunk PUTs data at offset start. It returns the persisted size the
// session reported with a 308 (-1 when it gave no Range), or the object
// resource when the upload was finalised.
func (b *backend) putChunk(ctx context.Context, uri string, data []byte, start, total int64) (int64, *objectResource, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, uri, bytes.NewReader(data))
	if err != nil {
		return 0, nil, redactSession(err)
	}
	req.ContentLength = int64(len(data))
	size := "*"
	if total >= 0 {
		size = strconv.FormatInt(total, 10)
	}
	if len(data) == 0 {
		req.Header.Set("Content-Range", "bytes */"+size)
	} else {
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%s", start, start+int64(len(data))-1, size))
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return 0, nil, redactSession(err)
	}
	defer drain(resp)
	return sessionAnswer(resp)
}

// queryStatus asks a session how many bytes it persisted (a PUT with
// Content-Range bytes */*, answered by 308 with a Range), or returns the
// object when the session is already finalised.
func (b *backend) queryStatus(ctx context.Context, uri string, total int64) (int64, *objectResource, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, uri, http.NoBody)
	if err != nil {
		return 0, nil, redactSession(err)
	}
	req.ContentLength = 0
	req.Header.Set("Content-Range", "bytes */*")
	resp, err := b.hc.Do(req)
	if err != nil {
		return 0, nil, redactSession(err)
	}
	defer drain(resp)
	n, obj, err := sessionAnswer(resp)
	if n < 0 {
		n = 0
	}
	return n, obj, err
}

// sessionAnswer reads the answer to a chunk or a status query.
func sessionAnswer(resp *http.Response) (int64, *objectResource, error) {
	switch resp.StatusCode {
	case http.StatusPermanentRedirect:
		r := resp.Header.Get("Range")
		if r == "" {
			return -1, nil, nil
		}
		// "bytes=0-N": N+1 bytes persisted.
		_, last, ok := strings.Cut(strings.TrimPrefix(r, "bytes="), "-")
		n, err := strconv.ParseInt(last, 10, 64)
		if !ok || err != nil {
			return 0, nil, &httpError{Status: resp.StatusCode, Body: "bad Range " + strconv.Quote(r)}
		}
		return n + 1, nil, nil
	case http.StatusOK, http.StatusCreated:
		var o objectResource
		if err := json.NewDecoder(resp.Body).Decode(&o); err != nil {
			return 0, nil, fmt.Errorf("gcs: decoding the finalised object: %w", err)
		}
		return 0, &o, nil
	}
	return 0, nil, respError(resp)
}

// cancelSession cancels a session (DELETE on its URI). The service answers
// 499; a session that is gone already is not an error.
func (b *backend) cancelSession(ctx context.Context, uri string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, uri, http.NoBody)
	if err != nil {
		return classify(redactSession(err))
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return classify(redactSession(err))
	}
	defer drain(resp)
	switch {
	case resp.StatusCode < 300, resp.StatusCode == 499, resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusGone:
		return nil
	}
	return classify(respError(resp))
}

// respError reads an error answer.
func respError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return &httpError{Status: resp.StatusCode, Body: string(body)}
}

// drain reads what is left of a body (so the connection is reused) and
// closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// redactSession removes the session URI from err, an error of a request on
// a session: the *url.Error of the HTTP client (or of parsing the URI)
// quotes the URL, upload_id included. The operation, the scheme and host of
// the URL and the cause stay, so the error is still classified (a reset
// connection is ErrUnavailable) and still says where it failed. Each such
// error is new to the call, so it is changed in place.
func redactSession(err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if ue, ok := e.(*url.Error); ok {
			ue.URL = redactedSessionURL(ue.URL)
		}
	}
	return err
}

// redactedSessionURL is what errors show of a session URI.
func redactedSessionURL(uri string) string {
	const hidden = "<resumable session URI, redacted>"
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return hidden
	}
	return u.Scheme + "://" + u.Host + "/" + hidden
}
