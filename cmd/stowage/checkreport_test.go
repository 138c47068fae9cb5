package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stowage/stowage/driver"
)

// TestCheckJSONAndJUnit: --json prints one report with every case, and
// --junit writes JUnit XML that says which case failed and why.
func TestCheckJSONAndJUnit(t *testing.T) {
	name := "test-brokenlist-report"
	driver.Register(name, func(ctx context.Context, p driver.Params) (driver.Driver, error) {
		d, err := driver.Open(ctx, "filesystem", p)
		if err != nil {
			return nil, err
		}
		return driver.New(brokenList{driver.BackendOf(d)}), nil
	})
	junit := filepath.Join(t.TempDir(), "report.xml")
	r := stowage(t, []string{"STOWAGE_SEED=7"}, "", "check", "--short", "--run", "^root/(List|Move)$",
		"--json", "--junit", junit, "--driver", name, "--param", "rootdirectory="+t.TempDir())
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (a failed case):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var rep checkReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("stdout is not one JSON report: %v\n%s", err, r.stdout)
	}
	if rep.Driver != name || rep.Seed != 7 || rep.Failed != 1 || rep.Passed < 1 || len(rep.Cases) != rep.Passed+rep.Failed+rep.Skipped {
		t.Fatalf("report: %+v", rep)
	}
	var sawFail bool
	for _, c := range rep.Cases {
		if c.Name == "root/List" && c.Status == "FAIL" && len(c.Log) > 0 {
			sawFail = true
		}
	}
	if !sawFail {
		t.Fatalf("root/List not reported failed with its log: %+v", rep.Cases)
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var x junitSuites
	if err := xml.Unmarshal(b, &x); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b)
	}
	if len(x.Suites) != 1 || x.Suites[0].Failures != 1 || x.Suites[0].Tests != len(rep.Cases) {
		t.Fatalf("suite: %+v", x.Suites)
	}
	for _, c := range x.Suites[0].Cases {
		if c.Name == "root/List" && (c.Failure == nil || !strings.Contains(c.Failure.Body, "List")) {
			t.Errorf("root/List in JUnit: %+v", c)
		}
		if c.Name == "root/Move" && c.Failure != nil {
			t.Errorf("root/Move failed in JUnit: %+v", c)
		}
	}
}
