package driver

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Params are a backend's configuration as an operator writes it: the map under
// "storage: <driver>:" in a registry config, or parameters from the
// environment. Values may be strings (YAML and environment variables often
// give strings), numbers, booleans, lists or maps. Keys are matched without
// regard to case.
type Params map[string]any

// Size is a byte count. In Params it is a number of bytes or a string with
// a unit: "10MiB", "10M" and "10m" are 10×2^20; "10MB" is 10×10^6; B, K/KiB,
// M/MiB, G/GiB, T/TiB are binary, KB, MB, GB, TB decimal.
type Size int64

// String formats a Size with the largest binary unit that divides it.
func (s Size) String() string {
	units := []struct {
		n    int64
		name string
	}{{1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}}
	for _, u := range units {
		if s != 0 && int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// ParseSize parses a size: a number of bytes ("1048576"), or a number with
// a binary unit (KiB, MiB, GiB, TiB, or Kubernetes' Ki, Mi, Gi, Ti: powers
// of 2^10) or a decimal unit (KB, MB, GB, TB: powers of 10^3), any case,
// with an optional space. A bare K, M, G or T is refused: tools disagree on
// it (Kubernetes and most CLIs read "10M" as 10×10^6 bytes, Distribution's
// and earlier stowage's configurations as 10×2^20), and a chunk size off by
// 5% can break a service's part rules, so the error says which to write.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size (want a number of bytes or a number with a unit such as 10MiB)", s)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if len(unit) == 1 && strings.Contains("kmgt", unit) {
		u := strings.ToUpper(unit)
		return 0, fmt.Errorf("%q is ambiguous: write %s%siB for %s×2^%d bytes or %s%sB for %s×10^%d (a bare %s means one in some tools and the other in others)",
			s, num, u, num, 10*(strings.Index("kmgt", unit)+1), num, u, num, 3*(strings.Index("kmgt", unit)+1), u)
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"ki": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"mi": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"gi": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"ti": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("%q has an unknown unit %q (use B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB)", s, t[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	v := f * mult
	if v > math.MaxInt64 || v != math.Trunc(v) {
		return 0, fmt.Errorf("%q is not a whole number of bytes within range", s)
	}
	return Size(v), nil
}

// Decode fills the struct pointed to by dst from params, strictly. Each
// exported field with a `param:"name"` tag is one parameter. Other tags:
//
//   - default:"v"  the value when the parameter is absent (parsed like input)
//   - min:"v", max:"v"  inclusive bounds for numbers, sizes and durations
//   - required:"true"  the parameter must be present and not empty
//   - secret:"true"  the value is never printed in an error
//   - oneof:"a|b|c"  the allowed values of a string
//
// Supported field types: string, bool, int, int64, float64, [Size],
// time.Duration (a Go duration string such as "1m30s", or a number of
// seconds), []string (a list, or a comma-separated string) and
// map[string]any. Booleans and numbers are accepted as strings too. A key
// that matches no field is rejected with the list of known ones. Every error
// is an [*Error] of KindInvalidArgument naming the driver, the parameter,
// the value (unless secret) and the bounds.
//
// If dst implements interface{ Validate() error }, it is called last; its
// error is returned wrapped the same way.
func Decode(driverName string, params Params, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic("driver.Decode: dst must be a pointer to a struct")
	}
	sv := rv.Elem()
	st := sv.Type()
	fields := map[string]int{}
	var known []string
	for i := 0; i < st.NumField(); i++ {
		name := st.Field(i).Tag.Get("param")
		if name == "" || !st.Field(i).IsExported() {
			continue
		}
		fields[strings.ToLower(name)] = i
		known = append(known, name)
	}
	sort.Strings(known)
	cfgErr := func(format string, args ...any) error { return ConfigError(driverName, format, args...) }
	seen := map[int]bool{}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		i, ok := fields[strings.ToLower(k)]
		if !ok {
			return cfgErr("unknown parameter %q (known: %s)", k, strings.Join(known, ", "))
		}
		if seen[i] {
			return cfgErr("parameter %s given twice (keys differ only in case)", st.Field(i).Tag.Get("param"))
		}
		seen[i] = true
		v := params[k]
		if v == nil {
			seen[i] = false // an empty YAML value counts as absent
			continue
		}
		if err := setField(sv.Field(i), st.Field(i), v); err != nil {
			return cfgErr("%s", err)
		}
	}
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		name := f.Tag.Get("param")
		if name == "" || seen[i] {
			continue
		}
		if f.Tag.Get("required") == "true" {
			return cfgErr("parameter %s is required", name)
		}
		if def, ok := f.Tag.Lookup("default"); ok {
			if err := setField(sv.Field(i), f, def); err != nil {
				panic(fmt.Sprintf("driver.Decode: bad default for %s: %v", name, err))
			}
		}
	}
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		if f.Tag.Get("required") == "true" && sv.Field(i).IsZero() {
			return cfgErr("parameter %s is required and must not be empty", f.Tag.Get("param"))
		}
	}
	if v, ok := dst.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return cfgErr("%s", err)
		}
	}
	return nil
}

// fieldKind is how Decode fills one type of field: the table below has a
// row per supported type, tried in order.
type fieldKind struct {
	// match reports whether the row handles fields of type t.
	match func(t reflect.Type) bool
	// want says what values are accepted, for "is not ..." errors.
	want string
	// convert turns a parameter value into the field's value. ok false
	// means v is not of an accepted form (the error is then "is not
	// want"); a non-nil detail explains a value of the right form that is
	// still wrong (it is shown unless the parameter is secret).
	convert func(v any, f reflect.StructField) (out reflect.Value, ok bool, detail error)
	// bounds, for numeric kinds, parses a min/max tag into the number the
	// field holds and formats one back for messages; nil means the kind
	// has no bounds.
	bounds *numBounds
}

// numBounds reads and prints the min and max tags of an integer kind (sizes,
// durations, ints), for checkBounds. float64 fields have checkFloatBounds.
type numBounds struct {
	parse  func(string) (int64, error)
	format func(int64) string
}

var (
	sizeType     = reflect.TypeOf(Size(0))
	durationType = reflect.TypeOf(time.Duration(0))
)

// fieldKinds is the table of supported field types.
var fieldKinds = []fieldKind{
	{
		match: func(t reflect.Type) bool { return t == sizeType },
		want:  "a size (a number of bytes or a string such as 10MiB)",
		convert: func(v any, _ reflect.StructField) (reflect.Value, bool, error) {
			if x, ok := v.(string); ok {
				n, err := ParseSize(x)
				if err != nil {
					return reflect.Value{}, true, err
				}
				return reflect.ValueOf(n), true, nil
			}
			i, ok := toInt(v)
			return reflect.ValueOf(Size(i)), ok, nil
		},
		bounds: &numBounds{
			parse:  func(s string) (int64, error) { z, err := ParseSize(s); return int64(z), err },
			format: func(x int64) string { return Size(x).String() },
		},
	},
	{
		match: func(t reflect.Type) bool { return t == durationType },
		want:  "a duration (such as 30s, 5m or 168h)",
		convert: func(v any, _ reflect.StructField) (reflect.Value, bool, error) {
			if x, ok := v.(string); ok {
				x = strings.TrimSpace(x)
				if d, err := time.ParseDuration(x); err == nil {
					return reflect.ValueOf(d), true, nil
				}
				i, err := strconv.ParseInt(x, 10, 64)
				return reflect.ValueOf(time.Duration(i) * time.Second), err == nil, nil
			}
			i, ok := toInt(v)
			return reflect.ValueOf(time.Duration(i) * time.Second), ok, nil
		},
		bounds: &numBounds{
			parse:  func(s string) (int64, error) { z, err := time.ParseDuration(s); return int64(z), err },
			format: func(x int64) string { return time.Duration(x).String() },
		},
	},
	{
		match: func(t reflect.Type) bool { return t.Kind() == reflect.String },
		want:  "a string",
		convert: func(v any, f reflect.StructField) (reflect.Value, bool, error) {
			var s string
			switch x := v.(type) {
			case string:
				s = x
			case int, int64, float64, bool, uint64:
				s = fmt.Sprint(x)
			default:
				return reflect.Value{}, false, nil
			}
			if one := f.Tag.Get("oneof"); one != "" && s != "" {
				for _, o := range strings.Split(one, "|") {
					if strings.EqualFold(o, s) {
						return reflect.ValueOf(o), true, nil
					}
				}
				return reflect.Value{}, true, oneOfError{strings.ReplaceAll(one, "|", ", ")}
			}
			return reflect.ValueOf(s), true, nil
		},
	},
	{
		match: func(t reflect.Type) bool { return t.Kind() == reflect.Bool },
		want:  "a boolean (true or false)",
		convert: func(v any, _ reflect.StructField) (reflect.Value, bool, error) {
			switch x := v.(type) {
			case bool:
				return reflect.ValueOf(x), true, nil
			case string:
				b, err := strconv.ParseBool(strings.TrimSpace(x))
				return reflect.ValueOf(b), err == nil, nil
			}
			return reflect.Value{}, false, nil
		},
	},
	{
		match: func(t reflect.Type) bool { return t.Kind() == reflect.Int || t.Kind() == reflect.Int64 },
		want:  "a whole number",
		convert: func(v any, _ reflect.StructField) (reflect.Value, bool, error) {
			i, ok := toInt(v)
			return reflect.ValueOf(i), ok, nil
		},
		bounds: &numBounds{
			parse:  func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) },
			format: func(x int64) string { return strconv.FormatInt(x, 10) },
		},
	},
	{
		match: func(t reflect.Type) bool { return t.Kind() == reflect.Float64 },
		want:  "a number",
		convert: func(v any, _ reflect.StructField) (reflect.Value, bool, error) {
			if y, ok := v.(string); ok {
				x, err := strconv.ParseFloat(strings.TrimSpace(y), 64)
				return reflect.ValueOf(x), err == nil && !math.IsNaN(x) && !math.IsInf(x, 0), nil
			}
			x, ok := toFloat(v)
			return reflect.ValueOf(x), ok, nil
		},
	},
	{
		match: func(t reflect.Type) bool { return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String },
		want:  "a list of strings",
		convert: func(v any, _ reflect.StructField) (reflect.Value, bool, error) {
			var out []string
			switch x := v.(type) {
			case string:
				for _, p := range strings.Split(x, ",") {
					if p = strings.TrimSpace(p); p != "" {
						out = append(out, p)
					}
				}
			case []string:
				out = append(out, x...)
			case []any:
				for _, e := range x {
					s, ok := e.(string)
					if !ok {
						return reflect.Value{}, false, nil
					}
					out = append(out, s)
				}
			default:
				return reflect.Value{}, false, nil
			}
			return reflect.ValueOf(out), true, nil
		},
	},
	{
		match: func(t reflect.Type) bool {
			return t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.Interface
		},
		want: "a map with string keys",
		convert: func(v any, _ reflect.StructField) (reflect.Value, bool, error) {
			m := map[string]any{}
			switch x := v.(type) {
			case map[string]any:
				for k, e := range x {
					m[k] = e
				}
			case Params:
				for k, e := range x {
					m[k] = e
				}
			case map[any]any:
				for k, e := range x {
					ks, ok := k.(string)
					if !ok {
						return reflect.Value{}, false, nil
					}
					m[ks] = e
				}
			default:
				return reflect.Value{}, false, nil
			}
			return reflect.ValueOf(m), true, nil
		},
	},
}

// oneOfError is the detail of a string outside its oneof tag.
type oneOfError struct{ allowed string }

func (e oneOfError) Error() string { return "is not one of " + e.allowed }

// setField converts v into the field's type with the row of fieldKinds that
// matches it, and checks the bounds (min and max tags, also on float64
// fields). Errors name the parameter, show the value unless it is secret,
// and say what is accepted.
func setField(fv reflect.Value, f reflect.StructField, v any) error {
	name := f.Tag.Get("param")
	secret := f.Tag.Get("secret") == "true"
	show := func(v any) string {
		if secret {
			return "(value hidden)"
		}
		if s, ok := v.(string); ok {
			return strconv.Quote(s)
		}
		return fmt.Sprint(v)
	}
	for _, k := range fieldKinds {
		if !k.match(fv.Type()) {
			continue
		}
		out, ok, detail := k.convert(v, f)
		switch {
		case !ok:
			return fmt.Errorf("parameter %s: %s is not %s", name, show(v), k.want)
		case detail != nil:
			if oe, isOneOf := detail.(oneOfError); isOneOf {
				return fmt.Errorf("parameter %s: %s %s", name, show(v), oe)
			}
			if secret {
				return fmt.Errorf("parameter %s: %s is not %s", name, show(v), k.want)
			}
			return fmt.Errorf("parameter %s: %v", name, detail)
		}
		if k.bounds != nil {
			if err := checkBounds(name, f, out.Int(), k.bounds.parse, k.bounds.format); err != nil {
				return err
			}
		}
		if fv.Kind() == reflect.Float64 {
			if err := checkFloatBounds(name, f, out.Float()); err != nil {
				return err
			}
		}
		fv.Set(out.Convert(fv.Type()))
		return nil
	}
	panic(fmt.Sprintf("driver.Decode: unsupported field type %s for %s", fv.Type(), name))
}

// checkFloatBounds checks a float64 field against its min and max tags.
func checkFloatBounds(name string, f reflect.StructField, x float64) error {
	parse := func(tag string) (float64, bool) {
		s, ok := f.Tag.Lookup(tag)
		if !ok {
			return 0, false
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			panic(fmt.Sprintf("driver.Decode: bad %s for %s", tag, name))
		}
		return v, true
	}
	lo, hasMin := parse("min")
	hi, hasMax := parse("max")
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	value := g(x)
	if f.Tag.Get("secret") == "true" {
		value = "(value hidden)"
	}
	switch {
	case hasMin && x < lo && hasMax:
		return fmt.Errorf("parameter %s: %s is below the minimum %s (allowed %s..%s)", name, value, g(lo), g(lo), g(hi))
	case hasMin && x < lo:
		return fmt.Errorf("parameter %s: %s is below the minimum %s (allowed %s or more)", name, value, g(lo), g(lo))
	case hasMax && x > hi && hasMin:
		return fmt.Errorf("parameter %s: %s is above the maximum %s (allowed %s..%s)", name, value, g(hi), g(lo), g(hi))
	case hasMax && x > hi:
		return fmt.Errorf("parameter %s: %s is above the maximum %s (allowed up to %s)", name, value, g(hi), g(hi))
	}
	return nil
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case uint:
		return int64(x), true
	case float64:
		if x != math.Trunc(x) || x > math.MaxInt64 || x < math.MinInt64 {
			return 0, false
		}
		return int64(x), true
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return i, err == nil
	}
	return 0, false
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// checkBounds checks n against the field's min and max tags.
func checkBounds(name string, f reflect.StructField, n int64, parse func(string) (int64, error), format func(int64) string) error {
	minS, hasMin := f.Tag.Lookup("min")
	maxS, hasMax := f.Tag.Lookup("max")
	if !hasMin && !hasMax {
		return nil
	}
	var lo, hi int64 = math.MinInt64, math.MaxInt64
	var err error
	if hasMin {
		if lo, err = parse(minS); err != nil {
			panic(fmt.Sprintf("driver.Decode: bad min for %s", name))
		}
	}
	if hasMax {
		if hi, err = parse(maxS); err != nil {
			panic(fmt.Sprintf("driver.Decode: bad max for %s", name))
		}
	}
	bounds := ""
	switch {
	case hasMin && hasMax:
		bounds = fmt.Sprintf(" (allowed %s..%s)", format(lo), format(hi))
	case hasMin:
		bounds = fmt.Sprintf(" (allowed %s or more)", format(lo))
	default:
		bounds = fmt.Sprintf(" (allowed up to %s)", format(hi))
	}
	value := format(n)
	if f.Tag.Get("secret") == "true" {
		value = "(value hidden)"
	}
	if n < lo {
		return fmt.Errorf("parameter %s: %s is below the minimum %s%s", name, value, format(lo), bounds)
	}
	if n > hi {
		return fmt.Errorf("parameter %s: %s is above the maximum %s%s", name, value, format(hi), bounds)
	}
	return nil
}

// Fill completes a config struct built in code (dst, a pointer to a struct
// with `param` tags) the way [Decode] completes one read from parameters:
// every field that is zero and has a default takes the default (booleans
// excepted: false is a value, so a boolean keeps what the code set), then
// bounds, required fields and Validate are checked, with Decode's errors.
// Fields without a `param` tag are left alone. A backend's New calls it,
// so New(ctx, Config{Bucket: "b"}) works like FromParams with only the
// bucket given. In code, zero means "the default": a parameter whose zero
// is a value of its own (maxretries 0) is set to zero through parameters
// (FromParams or driver.Open), which decode and never call Fill.
func Fill(driverName string, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic("driver.Fill: dst must be a pointer to a struct")
	}
	sv := rv.Elem()
	st := sv.Type()
	params := Params{}
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		name := f.Tag.Get("param")
		if name == "" || !f.IsExported() {
			continue
		}
		v := sv.Field(i)
		if v.IsZero() && v.Kind() != reflect.Bool {
			continue
		}
		switch {
		case f.Type == sizeType:
			params[name] = v.Int()
		case f.Type == durationType:
			params[name] = time.Duration(v.Int()).String()
		case v.Kind() == reflect.Slice:
			l := make([]any, v.Len())
			for j := range l {
				l[j] = v.Index(j).Interface()
			}
			params[name] = l
		default:
			params[name] = v.Interface()
		}
	}
	return Decode(driverName, params, dst)
}
