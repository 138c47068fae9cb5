package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stowage/stowage/driver"
)

// TestREADMEParameterTables keeps the README's parameter table of every
// backend true to the code (driver.Parameters): the same parameter names,
// and where a row gives a single default or bounds as A..B, the values the
// backend's Config declares. The tables used to drift from the package docs.
func TestREADMEParameterTables(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	bounds := regexp.MustCompile("`?([0-9][0-9A-Za-z.]*)`?\\.\\.`?([0-9][0-9A-Za-z.]*)`?")
	for _, name := range []string{"filesystem", "inmemory", "s3", "gcs", "azure", "swift", "oss"} {
		t.Run(name, func(t *testing.T) {
			params, err := driver.Parameters(name)
			if err != nil {
				t.Fatal(err)
			}
			rows := readmeTable(t, readme, name)
			seen := map[string]bool{}
			for _, row := range rows {
				for _, n := range row.names {
					seen[n] = true
					i := slices.IndexFunc(params, func(p driver.ParamInfo) bool { return p.Name == n })
					if i < 0 {
						t.Errorf("README table of %s names %q, which the backend does not know", name, n)
						continue
					}
					p := params[i]
					if len(row.names) != 1 {
						continue // a shared row's default and bounds are prose
					}
					if def := strings.Trim(row.def, "` "); p.Default != "" && !strings.ContainsAny(def, " ,()") && def != "" && def != p.Default {
						t.Errorf("README: %s default %q, the code says %q", n, def, p.Default)
					}
					if m := bounds.FindStringSubmatch(row.bounds); m != nil && (p.Min != "" || p.Max != "") {
						if m[1] != p.Min || m[2] != p.Max {
							t.Errorf("README: %s bounds %s..%s, the code says %s..%s", n, m[1], m[2], p.Min, p.Max)
						}
					}
				}
			}
			for _, p := range params {
				if !seen[p.Name] {
					t.Errorf("README table of %s lacks parameter %q", name, p.Name)
				}
			}
		})
	}
}

type readmeRow struct {
	names       []string
	def, bounds string
}

// readmeTable returns the rows of the first table in the README section
// "### <name>" whose first header cell is "parameter".
func readmeTable(t *testing.T, readme, name string) []readmeRow {
	t.Helper()
	i := strings.Index(readme, "\n### "+name+" ")
	if i < 0 {
		i = strings.Index(readme, "\n### "+name+"\n")
	}
	if i < 0 {
		t.Fatalf("README has no section ### %s", name)
	}
	sec := readme[i+1:]
	if j := strings.Index(sec[4:], "\n### "); j >= 0 {
		sec = sec[:j+4]
	}
	k := strings.Index(sec, "\n| parameter |")
	if k < 0 {
		t.Fatalf("README section %s has no parameter table", name)
	}
	var rows []readmeRow
	lines := strings.Split(sec[k+1:], "\n")
	for _, l := range lines[2:] {
		if !strings.HasPrefix(l, "|") {
			break
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		if len(cells) < 3 {
			continue
		}
		var row readmeRow
		for _, n := range regexp.MustCompile("`([a-z_0-9]+)`").FindAllStringSubmatch(cells[0], -1) {
			row.names = append(row.names, n[1])
		}
		row.def, row.bounds = strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2])
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		t.Fatalf("README table of %s is empty", name)
	}
	return rows
}
