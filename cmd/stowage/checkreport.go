package main

import (
	"encoding/xml"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/stowage/stowage/conformance"
)

// checkReport is the machine-readable result of stowage check: --json
// prints it, --junit writes it as JUnit XML.
type checkReport struct {
	Driver  string       `json:"driver"`
	Folder  string       `json:"folder"`
	Seed    uint64       `json:"seed"`
	Passed  int          `json:"passed"`
	Failed  int          `json:"failed"`
	Skipped int          `json:"skipped"`
	Seconds float64      `json:"seconds"`
	Cases   []caseReport `json:"cases"`
}

// caseReport is one case of a checkReport.
type caseReport struct {
	Name    string   `json:"name"`
	Status  string   `json:"status"` // PASS, FAIL or SKIP
	Seconds float64  `json:"seconds"`
	Log     []string `json:"log,omitempty"`
}

func newCheckReport(drv, folder string, seed uint64, results []conformance.Result, elapsed time.Duration) checkReport {
	r := checkReport{Driver: drv, Folder: folder, Seed: seed, Seconds: elapsed.Seconds(), Cases: []caseReport{}}
	for _, res := range results {
		switch res.Status {
		case conformance.Pass:
			r.Passed++
		case conformance.Fail:
			r.Failed++
		case conformance.Skip:
			r.Skipped++
		}
		r.Cases = append(r.Cases, caseReport{Name: res.Name, Status: res.Status.String(), Seconds: res.Duration.Seconds(), Log: res.Log})
	}
	return r
}

// JUnit XML, the subset CI systems (GitLab, Jenkins, GitHub actions'
// reporters) read: one testsuite, a testcase per case, failure and skipped
// elements with the case's log.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// writeJUnit writes the report to file as JUnit XML.
func (r checkReport) writeJUnit(file string) error {
	s := junitSuite{
		Name: "stowage check " + r.Driver, Tests: len(r.Cases), Failures: r.Failed, Skipped: r.Skipped,
		Time:       fmt.Sprintf("%.3f", r.Seconds),
		Properties: []junitProperty{{"driver", r.Driver}, {"folder", r.Folder}, {"seed", fmt.Sprint(r.Seed)}},
	}
	for _, c := range r.Cases {
		jc := junitCase{Name: c.Name, ClassName: "stowage.conformance." + r.Driver, Time: fmt.Sprintf("%.3f", c.Seconds)}
		log := strings.Join(c.Log, "\n")
		switch c.Status {
		case "FAIL":
			msg := "case failed"
			if len(c.Log) > 0 {
				msg = c.Log[len(c.Log)-1]
			}
			jc.Failure = &junitMessage{Message: msg, Body: log}
		case "SKIP":
			msg := "skipped"
			if len(c.Log) > 0 {
				msg = c.Log[0]
			}
			jc.Skipped = &junitMessage{Message: msg}
		default:
			jc.SystemOut = log
		}
		s.Cases = append(s.Cases, jc)
	}
	b, err := xml.MarshalIndent(junitSuites{Suites: []junitSuite{s}}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append([]byte(xml.Header), append(b, '\n')...), 0o644)
}
