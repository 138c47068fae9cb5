package azure

import (
	"bytes"
	"context"
	"encoding/xml"
	"net/http"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
)

// The SDK's CommitBlockList names every block "Latest": the service takes
// an uncommitted block of that ID if there is one, else the committed one.
// For blocks that must come from the blob's committed list (the base of an
// append, the list that Cancel re-commits) that is wrong whenever an
// uncommitted block carries the same ID, so commitBlocks sends its own
// block list, naming those blocks "Committed", through blockListPolicy.

// blockListKey is the context key under which commitBlocks hands its block
// list to blockListPolicy.
type blockListKey struct{}

// blockList is the block list of one Put Block List request: the committed
// blocks first, then the latest ones.
type blockList struct {
	committed, latest []string
}

// body returns the request body of l.
func (l *blockList) body() []byte {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	buf.WriteString("<BlockList>")
	for _, part := range []struct {
		tag string
		ids []string
	}{{"Committed", l.committed}, {"Latest", l.latest}} {
		for _, id := range part.ids {
			buf.WriteString("<" + part.tag + ">")
			_ = xml.EscapeText(&buf, []byte(id))
			buf.WriteString("</" + part.tag + ">")
		}
	}
	buf.WriteString("</BlockList>")
	return buf.Bytes()
}

// blockListPolicy replaces the body of a Put Block List request whose
// context carries a blockList. It runs once per call, before the retry and
// signing policies, so retries resend it and the signature covers it.
type blockListPolicy struct{}

func (blockListPolicy) Do(req *policy.Request) (*http.Response, error) {
	raw := req.Raw()
	if l, ok := raw.Context().Value(blockListKey{}).(*blockList); ok &&
		raw.Method == http.MethodPut && raw.URL.Query().Get("comp") == "blocklist" {
		if err := req.SetBody(streaming.NopCloser(bytes.NewReader(l.body())), "application/xml"); err != nil {
			return nil, err
		}
	}
	return req.Next()
}

// commitBlocks commits the block list committed (taken from the blob's
// committed blocks) followed by latest (the session's staged blocks; the
// committed ones of the same IDs if a retry finds them committed already).
func commitBlocks(ctx context.Context, bb *blockblob.Client, committed, latest []string, opts *blockblob.CommitBlockListOptions) (blockblob.CommitBlockListResponse, error) {
	ids := make([]string, 0, len(committed)+len(latest))
	ids = append(append(ids, committed...), latest...)
	if len(committed) > 0 {
		ctx = context.WithValue(ctx, blockListKey{}, &blockList{committed: committed, latest: latest})
	}
	return bb.CommitBlockList(ctx, ids, opts)
}

// attemptsKey is the context key of an *attempts that attemptPolicy fills.
type attemptsKey struct{}

// attempts records whether some attempt of a request ended without a
// definite answer (no response, or a 5xx): that attempt may still land.
type attempts struct {
	mu        sync.Mutex
	uncertain bool
}

func (a *attempts) Uncertain() bool {
	if a == nil {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.uncertain
}

type attemptPolicy struct{}

func (attemptPolicy) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if a, ok := req.Raw().Context().Value(attemptsKey{}).(*attempts); ok && (err != nil || resp.StatusCode >= 500) {
		a.mu.Lock()
		a.uncertain = true
		a.mu.Unlock()
	}
	return resp, err
}
