package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/stowage/stowage/driver"
)

// EnvConfig names a configuration file used when --config is not given.
const EnvConfig = "STOWAGE_CONFIG"

// EnvParamPrefix starts the names of environment variables that set one
// driver parameter each: STOWAGE_PARAM_SECRETKEY=... sets secretkey. They
// keep secrets off the command line.
const EnvParamPrefix = "STOWAGE_PARAM_"

// storageKeysIgnored are the keys under a registry config's "storage:" that
// are registry settings, not a driver.
var storageKeysIgnored = map[string]bool{
	"maintenance": true, "cache": true, "redirect": true, "delete": true, "tag": true,
}

// storeConfig is one configured store: a registered driver name and its
// parameters.
type storeConfig struct {
	Driver string
	Params driver.Params
	// Sources says where each parameter came from, by lowercase key:
	// the STOWAGE_PARAM_* variable, --param, or the file, so an error about
	// a parameter can name what set it. Nil for a store that was not loaded
	// from flags (bench's default).
	Sources map[string]string
}

// clone returns a copy whose Params can be changed freely.
func (c storeConfig) clone() storeConfig {
	p := make(driver.Params, len(c.Params))
	for k, v := range c.Params {
		p[k] = v
	}
	return storeConfig{Driver: c.Driver, Params: p, Sources: c.Sources}
}

// set sets parameter key, replacing any key that differs only in case (the
// drivers match keys without regard to case).
func (c storeConfig) set(key string, v any) {
	for k := range c.Params {
		if strings.EqualFold(k, key) {
			delete(c.Params, k)
		}
	}
	c.Params[key] = v
}

// get returns parameter key, matched without regard to case.
func (c storeConfig) get(key string) (any, bool) {
	for k, v := range c.Params {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// open opens the configured driver with ctx (which may carry a transport
// hook). A configuration error from the driver becomes a usage error (exit
// status 2).
func (c storeConfig) open(ctx context.Context) (driver.Driver, error) {
	d, err := driver.Open(ctx, c.Driver, c.Params)
	if err != nil {
		var de *driver.Error
		if errors.As(err, &de) && de.Kind == driver.KindInvalidArgument && de.Op == "config" {
			if src := c.sourcesIn(err.Error()); src != "" {
				err = fmt.Errorf("%w (%s)", err, src)
			}
			return nil, usageErr(err)
		}
		return nil, err
	}
	return d, nil
}

// paramFlags collects repeated --param key=value flags.
type paramFlags []string

func (p *paramFlags) String() string { return strings.Join(*p, ",") }

// Set accepts any value: load checks the form, because an error from Set
// would make the flag package print the value, which may be a secret.
func (p *paramFlags) Set(s string) error {
	*p = append(*p, s)
	return nil
}

// sourcesIn names where the parameters that msg (a driver's config error)
// mentions were set, such as "buckt was set by the variable
// STOWAGE_PARAM_BUCKT":
// an operator who mistyped a variable's name learns which one. Drivers name
// a parameter as `parameter NAME` or `parameter "NAME"`.
func (c storeConfig) sourcesIn(msg string) string {
	lower := strings.ToLower(msg)
	var found []string
	keys := make([]string, 0, len(c.Sources))
	for k := range c.Sources {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, form := range []string{"parameter " + k, `parameter "` + k + `"`} {
			i := strings.Index(lower, form)
			if i < 0 {
				continue
			}
			end := i + len(form)
			if end < len(lower) && (lower[end] == '_' || lower[end] >= 'a' && lower[end] <= 'z' || lower[end] >= '0' && lower[end] <= '9') {
				continue // a longer name that starts with k
			}
			found = append(found, k+" was set by "+c.Sources[k])
			break
		}
	}
	return strings.Join(found, "; ")
}

// configFlags are the flags every store command accepts.
type configFlags struct {
	file   string
	driver string
	params paramFlags
}

func (c *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.file, "config", "", "read the store from `FILE` (registry-style YAML, or driver: + parameters:); default $"+EnvConfig)
	fs.StringVar(&c.driver, "driver", "", "use the driver `NAME` (registered: "+strings.Join(driver.Registered(), ", ")+")")
	fs.Var(&c.params, "param", "set a driver parameter, `key=value` (repeatable; overrides the file and "+EnvParamPrefix+"<KEY> variables)")
}

// args returns the flags again, for a child process that must open the same
// store.
func (c *configFlags) args() []string {
	var a []string
	if c.file != "" {
		a = append(a, "--config", c.file)
	}
	if c.driver != "" {
		a = append(a, "--driver", c.driver)
	}
	for _, p := range c.params {
		a = append(a, "--param", p)
	}
	return a
}

// load resolves the configuration: the file (--config or $STOWAGE_CONFIG),
// then STOWAGE_PARAM_* variables, then --param flags. ok is false when
// nothing configures a store. Every error is a usage error.
func (c *configFlags) load(environ []string) (cfg storeConfig, ok bool, err error) {
	file := c.file
	if file == "" {
		file = lookupEnv(environ, EnvConfig)
	}
	cfg.Params = driver.Params{}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return cfg, false, usageErr(fmt.Errorf("config: %w", err))
		}
		cfg, err = parseConfig(data)
		if err != nil {
			return cfg, false, usageErr(fmt.Errorf("config %s: %w", file, err))
		}
	}
	if c.driver != "" {
		if cfg.Driver != "" && cfg.Driver != c.driver {
			return cfg, false, usageErr(fmt.Errorf("--driver %s does not match the driver %s of %s", c.driver, cfg.Driver, file))
		}
		cfg.Driver = c.driver
	}
	envKeys := map[string]string{}
	envNames := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if name, found := strings.CutPrefix(k, EnvParamPrefix); found && name != "" {
			envKeys[strings.ToLower(name)] = v
			envNames[strings.ToLower(name)] = k
		}
	}
	if cfg.Driver == "" {
		if len(c.params) > 0 || len(envKeys) > 0 {
			return cfg, false, usageErr(errors.New("parameters given but no driver: add --driver NAME or --config FILE"))
		}
		return cfg, false, nil
	}
	names := make([]string, 0, len(envKeys))
	for k := range envKeys {
		names = append(names, k)
	}
	sort.Strings(names)
	cfg.Sources = map[string]string{}
	for k := range cfg.Params {
		cfg.Sources[strings.ToLower(k)] = "the file " + file
	}
	for _, k := range names {
		cfg.set(k, envKeys[k])
		cfg.Sources[k] = "the variable " + envNames[k]
	}
	for i, p := range c.params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.TrimSpace(k) == "" {
			// The value is not echoed: it may hold a secret.
			return cfg, false, usageErr(fmt.Errorf("--param number %d is not key=value", i+1))
		}
		cfg.set(strings.TrimSpace(k), v)
		cfg.Sources[strings.ToLower(strings.TrimSpace(k))] = "--param"
	}
	return cfg, true, nil
}

// parseConfig reads a configuration file. Two shapes are accepted:
//
//	# registry style: the storage section of a registry config
//	storage:
//	  s3: {bucket: b, region: us-east-1}
//	  maintenance: {...}        # ignored, as are cache, redirect, delete, tag
//	# (other top-level keys, such as version or http, are ignored)
//
//	# plain
//	driver: s3
//	parameters: {bucket: b, region: us-east-1}
func parseConfig(data []byte) (storeConfig, error) {
	var top map[string]any
	if err := yaml.Unmarshal(data, &top); err != nil {
		return storeConfig{}, fmt.Errorf("not valid YAML: %s", yamlErrorLine(err))
	}
	if top == nil {
		return storeConfig{}, errors.New("empty file: want storage: {<driver>: {...}} or driver: NAME and parameters: {...}")
	}
	if st, ok := top["storage"]; ok {
		m, ok := st.(map[string]any)
		if !ok {
			return storeConfig{}, errors.New("storage: is not a map of a driver name to its parameters")
		}
		var names []string
		for k := range m {
			if !storageKeysIgnored[k] {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		switch len(names) {
		case 0:
			return storeConfig{}, errors.New("storage: names no driver")
		case 1:
		default:
			return storeConfig{}, fmt.Errorf("storage: names more than one driver (%s)", strings.Join(names, ", "))
		}
		params, err := paramsOf(m[names[0]], "storage: "+names[0]+":")
		if err != nil {
			return storeConfig{}, err
		}
		return storeConfig{Driver: names[0], Params: params}, nil
	}
	name, ok := top["driver"]
	if !ok {
		return storeConfig{}, errors.New("want storage: {<driver>: {...}} (registry style) or driver: NAME and parameters: {...}")
	}
	s, ok := name.(string)
	if !ok || s == "" {
		return storeConfig{}, errors.New("driver: is not a driver name")
	}
	for k := range top {
		if k != "driver" && k != "parameters" {
			return storeConfig{}, fmt.Errorf("unknown key %q (a plain config has driver: and parameters: only)", k)
		}
	}
	params, err := paramsOf(top["parameters"], "parameters:")
	if err != nil {
		return storeConfig{}, err
	}
	return storeConfig{Driver: s, Params: params}, nil
}

// paramsOf converts a YAML value to Params; an empty value is no parameters.
func paramsOf(v any, where string) (driver.Params, error) {
	switch m := v.(type) {
	case nil:
		return driver.Params{}, nil
	case map[string]any:
		return driver.Params(m), nil
	}
	return nil, fmt.Errorf("%s is not a map of parameters", where)
}

// yamlErrorLine keeps the position of a YAML syntax error and drops any
// quoted content, which might be a secret.
func yamlErrorLine(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	if i := strings.IndexAny(s, "`'\""); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

func lookupEnv(environ []string, key string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(environ[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}
