package driver

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

type infoConfig struct {
	Bucket  string         `param:"bucket" required:"true"`
	Key     string         `param:"secretkey" secret:"true"`
	Chunk   Size           `param:"chunksize" default:"10MiB" min:"5MiB" max:"5GiB"`
	Wait    time.Duration  `param:"wait" default:"1s"`
	Mode    string         `param:"mode" default:"a" oneof:"a|b"`
	N       int            `param:"n" min:"1"`
	On      bool           `param:"on"`
	F       float64        `param:"f"`
	L       []string       `param:"l"`
	M       map[string]any `param:"m"`
	private string         `param:"hidden"`
	NoTag   string
}

func TestParamsOf(t *testing.T) {
	got := ParamsOf(&infoConfig{})
	want := []ParamInfo{
		{Name: "bucket", Type: "string", Required: true},
		{Name: "chunksize", Type: "size", Default: "10MiB", Min: "5MiB", Max: "5GiB"},
		{Name: "f", Type: "float"},
		{Name: "l", Type: "list"},
		{Name: "m", Type: "map"},
		{Name: "mode", Type: "string", Default: "a", OneOf: []string{"a", "b"}},
		{Name: "n", Type: "int", Min: "1"},
		{Name: "on", Type: "bool"},
		{Name: "secretkey", Type: "string", Secret: true},
		{Name: "wait", Type: "duration", Default: "1s"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParamsOf:\n got  %+v\n want %+v", got, want)
	}
	// Every parameter ParamsOf lists is one Decode accepts.
	var c infoConfig
	params := Params{"bucket": "b", "secretkey": "k", "chunksize": "6MiB", "f": 1.5, "l": "x,y",
		"m": map[string]any{}, "mode": "b", "n": 2, "on": true, "wait": "2s"}
	if len(params) != len(got) {
		t.Fatalf("test lists %d parameters, ParamsOf %d", len(params), len(got))
	}
	if err := Decode("test", params, &c); err != nil {
		t.Fatal(err)
	}
}

func TestParameters(t *testing.T) {
	Register("paraminfo-test", func(context.Context, Params) (Driver, error) { return nil, errors.New("unused") })
	if _, err := Parameters("paraminfo-test"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Parameters of a backend without a configuration: %v, want unsupported", err)
	}
	RegisterConfig("paraminfo-test", infoConfig{})
	got, err := Parameters("paraminfo-test")
	if err != nil || !reflect.DeepEqual(got, ParamsOf(infoConfig{})) {
		t.Errorf("Parameters = %+v, %v", got, err)
	}
	if _, err := Parameters("no-such-backend"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Parameters of an unknown backend: %v, want invalid argument", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("RegisterConfig twice did not panic")
		}
	}()
	RegisterConfig("paraminfo-test", infoConfig{})
}
