package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestPurgeDryRunFilesystem: on the filesystem backend, --dry-run lists the
// session PurgeUploads would remove (its bytes, by its folder and file)
// and keeps the younger one; the purge then removes exactly that one.
func TestPurgeDryRunFilesystem(t *testing.T) {
	root := t.TempDir()
	d, err := driver.Open(t.Context(), "filesystem", driver.Params{"rootdirectory": root})
	if err != nil {
		t.Fatal(err)
	}
	for p, data := range map[string]string{"/old": "1234567", "/young": "89"} {
		w, err := d.Writer(t.Context(), p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Age the old upload's session file by two hours.
	var oldInfo driver.UploadInfo
	lister := driver.BackendOf(d).(driver.UploadLister)
	if err := lister.ListUploads(t.Context(), 0, func(u driver.UploadInfo) error {
		if u.Size == 7 {
			oldInfo = u
		}
		return nil
	}); err != nil || oldInfo.ID == "" {
		t.Fatalf("ListUploads(0): %v, found %+v", err, oldInfo)
	}
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(filepath.Join(root, "~stowage", filepath.FromSlash(oldInfo.ID)), past, past); err != nil {
		t.Fatal(err)
	}
	args := []string{"purge-uploads", "--driver", "filesystem", "--param", "rootdirectory=" + root, "--older-than", "1h"}
	r := stowage(t, nil, "", append(args, "--dry-run")...)
	if r.code != 0 || !strings.Contains(r.stdout, "would remove "+oldInfo.ID+" (7 bytes, started ") ||
		!strings.Contains(r.stdout, "would remove 1 uploads older than 1h0m0s, 7 bytes") {
		t.Fatalf("--dry-run: %+v", r)
	}
	if _, err := d.Writer(t.Context(), "/old", true); err != nil {
		t.Fatalf("--dry-run removed the old upload: %v", err)
	}
	if r := stowage(t, nil, "", args...); r.code != 0 {
		t.Fatalf("purge: %+v", r)
	}
	if _, err := d.Writer(t.Context(), "/old", true); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("the old upload resumes after the purge: %v", err)
	}
	if w, err := d.Writer(t.Context(), "/young", true); err != nil || w.Size() != 2 {
		t.Fatalf("the young upload after the purge: %v", err)
	}
}
