package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stowage/stowage/driver"
)

// TestPurgeReportAndDryRun: purge-uploads reports count, bytes and age,
// and --dry-run lists without removing (inmemory implements UploadLister).
func TestPurgeReportAndDryRun(t *testing.T) {
	store := "purge-" + t.Name()
	d, err := driver.Open(t.Context(), "inmemory", driver.Params{"store": store})
	if err != nil {
		t.Fatal(err)
	}
	for p, data := range map[string]string{"/u/a": "12345", "/u/b": "678"} {
		w, err := d.Writer(t.Context(), p, false)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(data))
		w.Close()
	}
	args := []string{"purge-uploads", "--driver", "inmemory", "--param", "store=" + store, "--older-than", "0s"}
	r := stowage(t, nil, "", append(args, "--dry-run")...)
	if r.code != 0 || !strings.Contains(r.stdout, "would remove /u/a (5 bytes, started ") ||
		!strings.Contains(r.stdout, "would remove 2 uploads older than 0s, 8 bytes, the oldest started ") {
		t.Fatalf("--dry-run: %+v", r)
	}
	r = stowage(t, nil, "", append(args, "--json")...)
	var rep purgeReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 || rep.Count != 2 || rep.Bytes != 8 || rep.DryRun || len(rep.Uploads) != 2 {
		t.Fatalf("purge --json: %v: %+v", err, r)
	}
	if r := stowage(t, nil, "", append(args, "--dry-run")...); r.code != 0 || !strings.Contains(r.stdout, "would remove 0 uploads") {
		t.Fatalf("after the purge: %+v", r)
	}
	if _, err := d.Writer(t.Context(), "/u/a", true); err == nil {
		t.Fatal("a purged upload can still be resumed")
	}
}
