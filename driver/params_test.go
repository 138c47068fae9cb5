package driver

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

type testConfig struct {
	Root      string         `param:"rootdirectory" required:"true"`
	Chunk     Size           `param:"chunksize" default:"10MiB" min:"5MiB" max:"5GiB"`
	Threads   int            `param:"maxthreads" default:"100" min:"25" max:"10000"`
	Secure    bool           `param:"secure" default:"true"`
	Secret    string         `param:"secretkey" secret:"true"`
	Expiry    time.Duration  `param:"redirectexpiry" default:"20m" min:"1s" max:"168h"`
	Mode      string         `param:"checksum" default:"when_required" oneof:"when_required|when_supported|off"`
	Tags      []string       `param:"tags"`
	Creds     map[string]any `param:"credentials"`
	Ratio     float64        `param:"ratio"`
	validated bool
}

func (c *testConfig) Validate() error {
	c.validated = true
	if c.Root == "/forbidden" {
		return errors.New("rootdirectory /forbidden is not allowed")
	}
	return nil
}

func TestDecodeDefaultsAndTypes(t *testing.T) {
	var c testConfig
	err := Decode("test", Params{
		"RootDirectory": "/data", "chunksize": "64MiB", "maxthreads": "200", "secure": "false",
		"secretkey": "s3cr3t", "redirectexpiry": 90, "checksum": "WHEN_SUPPORTED", "tags": "a, b,,c",
		"credentials": map[string]any{"type": "service_account"}, "ratio": "0.5",
	}, &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Root != "/data" || c.Chunk != 64<<20 || c.Threads != 200 || c.Secure || c.Secret != "s3cr3t" ||
		c.Expiry != 90*time.Second || c.Mode != "when_supported" || strings.Join(c.Tags, "|") != "a|b|c" ||
		c.Creds["type"] != "service_account" || c.Ratio != 0.5 || !c.validated {
		t.Fatalf("decoded %+v", c)
	}
	var d testConfig
	if err := Decode("test", Params{"rootdirectory": "/x", "secretkey": nil}, &d); err != nil {
		t.Fatal(err)
	}
	if d.Chunk != 10<<20 || d.Threads != 100 || !d.Secure || d.Expiry != 20*time.Minute || d.Mode != "when_required" {
		t.Fatalf("defaults %+v", d)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		params Params
		want   []string
	}{
		{Params{}, []string{"test: config", "rootdirectory is required"}},
		{Params{"rootdirectory": ""}, []string{"rootdirectory is required"}},
		{Params{"rootdirectory": "/d", "chunksize": "4MiB"}, []string{"chunksize", "4MiB is below the minimum 5MiB", "5MiB..5GiB"}},
		{Params{"rootdirectory": "/d", "chunksize": 6 << 30}, []string{"chunksize", "6GiB is above the maximum 5GiB"}},
		{Params{"rootdirectory": "/d", "chunksize": "ten"}, []string{"chunksize", `"ten" is not a size`}},
		{Params{"rootdirectory": "/d", "chunksize": "10XB"}, []string{"unknown unit"}},
		{Params{"rootdirectory": "/d", "maxthreads": "1.5"}, []string{"maxthreads", "not a whole number"}},
		{Params{"rootdirectory": "/d", "maxthreads": 5}, []string{"maxthreads: 5 is below the minimum 25 (allowed 25..10000)"}},
		{Params{"rootdirectory": "/d", "secure": "maybe"}, []string{"secure", "boolean"}},
		{Params{"rootdirectory": "/d", "redirectexpiry": "soon"}, []string{"redirectexpiry", "duration"}},
		{Params{"rootdirectory": "/d", "redirectexpiry": "200h"}, []string{"above the maximum 168h0m0s"}},
		{Params{"rootdirectory": "/d", "checksum": "md5"}, []string{"checksum", "not one of when_required, when_supported, off"}},
		{Params{"rootdirectory": "/d", "bogus": 1}, []string{`unknown parameter "bogus"`, "known: checksum, chunksize, credentials"}},
		{Params{"rootdirectory": "/d", "Chunksize": "5MiB", "chunksize": "6MiB"}, []string{"given twice"}},
		{Params{"rootdirectory": "/forbidden"}, []string{"/forbidden is not allowed"}},
		{Params{"rootdirectory": "/d", "tags": 3}, []string{"tags", "list of strings"}},
	}
	for _, c := range cases {
		var cfg testConfig
		err := Decode("test", c.params, &cfg)
		if err == nil {
			t.Errorf("Decode(%v) = nil, want error", c.params)
			continue
		}
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Decode(%v): %v is not ErrInvalidArgument", c.params, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Decode(%v) = %q, want it to contain %q", c.params, err, w)
			}
		}
	}
}

func TestDecodeNeverEchoesSecrets(t *testing.T) {
	type cfg struct {
		Key  string `param:"accountkey" secret:"true" oneof:"a|b"`
		Size Size   `param:"keysize" secret:"true" min:"1"`
	}
	for _, p := range []Params{{"accountkey": "hunter2-very-secret"}, {"accountkey": []int{1}}, {"keysize": "hunter2-very-secret"}} {
		var c cfg
		err := Decode("az", p, &c)
		if err == nil {
			t.Fatalf("Decode(%v) = nil", p)
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "[1]") {
			t.Errorf("error echoes a secret: %v", err)
		}
		if !strings.Contains(err.Error(), "hidden") {
			t.Errorf("error %q does not say the value is hidden", err)
		}
	}
}

func TestParseSize(t *testing.T) {
	cases := map[string]Size{
		"0": 0, "1": 1, "10MiB": 10 << 20, "10Mi": 10 << 20, "10mib": 10 << 20, "10MB": 10e6, "5GiB": 5 << 30,
		"5gi": 5 << 30, "1.5KiB": 1536, "256 KiB": 256 << 10, "1TB": 1e12, "2ti": 2 << 40, "7B": 7, "100kb": 1e5,
	}
	for in, want := range cases {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.3B", "1e3", "10 parsecs", "99999999999TiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) succeeded", in)
		}
	}
	// A bare K, M, G or T means 2^10.. in some tools and 10^3.. in others:
	// refused, with both spellings offered.
	for in, want := range map[string]string{
		"10M": "write 10MiB for 10×2^20 bytes or 10MB for 10×10^6",
		"5g":  "write 5GiB for 5×2^30 bytes or 5GB for 5×10^9",
		"64k": "write 64KiB for 64×2^10 bytes or 64KB for 64×10^3",
		"1 T": "write 1TiB for 1×2^40 bytes or 1TB for 1×10^12",
	} {
		_, err := ParseSize(in)
		if err == nil || !strings.Contains(err.Error(), "ambiguous: "+want) {
			t.Errorf("ParseSize(%q): %v, want an ambiguity error saying %q", in, err, want)
		}
	}
	if s := Size(5 << 20).String(); s != "5MiB" {
		t.Errorf("String = %s", s)
	}
	if s := Size(1000).String(); s != "1000B" {
		t.Errorf("String = %s", s)
	}
}

func TestDecodeFloatBounds(t *testing.T) {
	type cfg struct {
		Rate float64 `param:"rate" min:"0" max:"1000"`
	}
	for _, c := range []struct {
		v    any
		want string
	}{
		{-1, "parameter rate: -1 is below the minimum 0 (allowed 0..1000)"},
		{"1e4", "parameter rate: 10000 is above the maximum 1000 (allowed 0..1000)"},
		{"NaN", `parameter rate: "NaN" is not a number`},
		{"fast", `parameter rate: "fast" is not a number`},
	} {
		var x cfg
		err := Decode("test", Params{"rate": c.v}, &x)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("rate=%v: %v, want %q", c.v, err, c.want)
		}
	}
	var x cfg
	if err := Decode("test", Params{"rate": "2.5"}, &x); err != nil || x.Rate != 2.5 {
		t.Fatalf("rate=2.5: %v, %v", err, x.Rate)
	}
}

func TestFill(t *testing.T) {
	type cfg struct {
		Bucket   string         `param:"bucket" required:"true"`
		Chunk    Size           `param:"chunksize" default:"5MiB" min:"1MiB"`
		Expiry   time.Duration  `param:"expiry" default:"20m"`
		Secure   bool           `param:"secure" default:"true"`
		Tags     []string       `param:"tags" default:"a,b"`
		Creds    map[string]any `param:"credentials" secret:"true"`
		internal int
	}
	c := cfg{Bucket: "b", internal: 7, Tags: []string{"x"}, Creds: map[string]any{"k": "v"}}
	if err := Fill("t", &c); err != nil {
		t.Fatal(err)
	}
	if c.Chunk != 5<<20 || c.Expiry != 20*time.Minute || c.Secure || c.internal != 7 ||
		len(c.Tags) != 1 || c.Tags[0] != "x" || c.Creds["k"] != "v" {
		t.Fatalf("Fill: %+v", c)
	}
	again := c
	if err := Fill("t", &again); err != nil || fmt.Sprint(again) != fmt.Sprint(c) {
		t.Fatalf("Fill of a filled config changed it: %+v, %v", again, err)
	}
	err := Fill("t", &cfg{Bucket: "b", Chunk: 10})
	var de *Error
	if !errors.As(err, &de) || de.Kind != KindInvalidArgument || !strings.Contains(err.Error(), "chunksize") {
		t.Fatalf("Fill below min: %v", err)
	}
	if err := Fill("t", &cfg{}); err == nil || !strings.Contains(err.Error(), "bucket is required") {
		t.Fatalf("Fill without the required field: %v", err)
	}
}
