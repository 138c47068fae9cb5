package driver

import (
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"
)

// ParamInfo describes one parameter a backend accepts, as [Decode] reads it
// from the backend's configuration struct tags.
type ParamInfo struct {
	// Name is the key, as an operator writes it (matched without regard to
	// case).
	Name string
	// Type is one of "string", "bool", "int", "float", "size" (a byte count,
	// see [Size]), "duration", "list" (of strings) or "map".
	Type string
	// Default is the value used when the parameter is absent, as written in
	// the tag; "" when there is none.
	Default string
	// Min and Max are the inclusive bounds of a number, size or duration,
	// as written in the tags; "" when unbounded.
	Min, Max string
	// Required is true when the parameter must be given.
	Required bool
	// Secret is true when the value is a credential: never print or log it.
	Secret bool
	// OneOf lists the allowed values of a string, nil when any is allowed.
	OneOf []string
}

var (
	configsMu sync.RWMutex
	configs   = map[string]reflect.Type{}
)

// RegisterConfig declares config (a struct decoded by [Decode], or a pointer
// to one) as the configuration of the backend registered as name, so that
// [Parameters] can describe it. Backend packages call it from init next to
// [Register]. It panics if name already has a configuration or config is not
// a struct.
func RegisterConfig(name string, config any) {
	t := configType(config)
	configsMu.Lock()
	defer configsMu.Unlock()
	if _, dup := configs[name]; dup {
		panic("driver.RegisterConfig: " + name + " registered twice")
	}
	configs[name] = t
}

func configType(config any) reflect.Type {
	t := reflect.TypeOf(config)
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		panic("driver: a configuration must be a struct or a pointer to one")
	}
	return t
}

// Parameters returns the parameters the backend registered as name accepts,
// sorted by name, so that a program (a registry build, a config checker)
// can tell known and secret keys apart without keeping a list by hand. An
// unknown name is an [*Error] of KindInvalidArgument that lists the
// registered backends; a backend that declared no configuration (see
// [RegisterConfig]) is an [*Error] of KindUnsupported.
func Parameters(name string) ([]ParamInfo, error) {
	configsMu.RLock()
	t, ok := configs[name]
	configsMu.RUnlock()
	if !ok {
		registryMu.RLock()
		_, known := registry[name]
		registryMu.RUnlock()
		if !known {
			return nil, ConfigError(name, "unknown storage driver %q (registered: %s)", name, strings.Join(Registered(), ", "))
		}
		return nil, &Error{Driver: name, Op: "Parameters", Kind: KindUnsupported, Detail: "the backend declares no configuration (driver.RegisterConfig)"}
	}
	return paramsOfType(t), nil
}

// ParamsOf returns the parameters [Decode] accepts for config (a struct or a
// pointer to one), sorted by name.
func ParamsOf(config any) []ParamInfo { return paramsOfType(configType(config)) }

func paramsOfType(t reflect.Type) []ParamInfo {
	var out []ParamInfo
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("param")
		if name == "" || !f.IsExported() {
			continue
		}
		p := ParamInfo{
			Name:     name,
			Type:     paramType(f.Type),
			Default:  f.Tag.Get("default"),
			Min:      f.Tag.Get("min"),
			Max:      f.Tag.Get("max"),
			Required: f.Tag.Get("required") == "true",
			Secret:   f.Tag.Get("secret") == "true",
		}
		if one := f.Tag.Get("oneof"); one != "" {
			p.OneOf = strings.Split(one, "|")
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// paramType names the kind of value Decode reads into a field of type t.
func paramType(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(Size(0)):
		return "size"
	case t == reflect.TypeOf(time.Duration(0)):
		return "duration"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int64:
		return "int"
	case reflect.Float64:
		return "float"
	case reflect.Slice:
		return "list"
	case reflect.Map:
		return "map"
	}
	return t.String()
}
