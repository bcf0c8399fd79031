package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
)

// The decoder stops at the first value of the wrong type, places every key of the second and
// later [[device]] tables at the line of the last one, and matches key names case-insensitively
// when no name matches exactly. So before decoding, the schema checker walks the parsed file
// against the Config struct, and each device's and tag's driver keys against that driver's
// settings struct, and reports every unknown key and every value of the wrong type, each at
// its own line. The decoder then skips the keys it reported, and validation skips the tables
// they are in (a section, a device's own table, a tag's table): one bad table never hides the
// problems of another.

// owner names the device and tag a key belongs to, for error messages.
type owner struct{ device, tag string }

// checker collects the problems of one file. It runs while the parse tree is in memory and
// the file's lines are not (see parseWith): each problem gets its line later, from place.
type checker struct {
	file  string
	reg   *registry
	errs  Errors
	at    []path          // the key of each of errs, for place
	keys  map[string]bool // paths of the keys with a problem, which the decoder skips
	units map[string]bool // paths of the tables with a problem, which validation skips
}

func newChecker(file string, reg *registry) *checker {
	return &checker{file: file, reg: reg, keys: map[string]bool{}, units: map[string]bool{}}
}

func (c *checker) add(p path, o owner, format string, args ...any) {
	c.errs = append(c.errs, &Error{File: c.file, Device: o.device, Tag: o.tag, Msg: fmt.Sprintf(format, args...)})
	c.at = append(c.at, slices.Clone(p)) // callers reuse p
	c.keys[p.key()] = true
	c.units[unitOf(p).key()] = true
}

// place gives every problem found so far the line of its key in lines.
func (c *checker) place(lines lineMap) {
	for i, p := range c.at {
		c.errs[i].Line = lines.line(p)
	}
}

// bad reports whether the table at p had a problem of key or type.
func (c *checker) bad(p path) bool { return len(c.units) > 0 && c.units[p.key()] }

// skipped reports whether the key at p had a problem of key or type, which the decoder skips.
func (c *checker) skipped(p path) bool { return len(c.keys) > 0 && c.keys[p.key()] }

// unitOf returns the table a problem at p belongs to: a tag's table, a device's own table, or
// else the top-level section (or key).
func unitOf(p path) path {
	if len(p) >= 2 && p[0] == "device" && isIndex(p[1]) {
		if len(p) >= 4 && p[2] == "tag" && isIndex(p[3]) {
			return p[:4]
		}
		return p[:2]
	}
	return p[:min(len(p), 1)]
}

func isIndex(seg string) bool { return strings.HasPrefix(seg, "[") }

// dotted returns p as written in the file, without array indices: "device.tag.address".
func (p path) dotted() string {
	var names []string
	for _, s := range p {
		if !strings.HasPrefix(s, "[") {
			names = append(names, s)
		}
	}
	return strings.Join(names, ".")
}

// structField is a struct field that is a key: its TOML name, its index for FieldByIndex and
// its type.
type structField struct {
	name  string
	index []int
	typ   reflect.Type
}

// structFields are the keys of a struct type, with the same fields by name.
type structFields struct {
	list   []structField
	byName map[string]reflect.Type
}

// fieldCache holds structFields by reflect.Type: reflect.VisibleFields allocates on every
// call, and a 40,000-tag file asks for the same few types some 100,000 times.
var fieldCache sync.Map // reflect.Type → *structFields

// fieldsOf returns the keys of struct type t (promoted fields included). The result is shared:
// callers must not change it.
func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{byName: map[string]reflect.Type{}}
	for _, sf := range reflect.VisibleFields(t) {
		if name := tomlName(sf); name != "" {
			f.list = append(f.list, structField{name: name, index: sf.Index, typ: sf.Type})
			f.byName[name] = sf.Type
		}
	}
	actual, _ := fieldCache.LoadOrStore(t, f)
	return actual.(*structFields)
}

// fieldsByKey maps the TOML names of a struct's fields (promoted ones included) to their types.
// The map is shared: callers must not change it.
func fieldsByKey(t reflect.Type) map[string]reflect.Type { return fieldsOf(t).byName }

// tomlName is the key of a struct field, or "" for a field that is not one.
func tomlName(f reflect.StructField) string {
	name := f.Tag.Get("toml")
	if name == "-" || !f.IsExported() || f.Anonymous {
		return ""
	}
	return name
}

// sortedKeys returns the keys of a table in order, so that messages come in a stable order.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// table checks a table against struct type t.
func (c *checker) table(raw map[string]any, t reflect.Type, p path, o owner) {
	fields := fieldsByKey(t)
	for _, k := range sortedKeys(raw) {
		ft, ok := fields[k]
		if !ok {
			c.add(p.with(k), o, "unknown key %q", p.with(k).dotted())
			continue
		}
		c.value(raw[k], ft, p.with(k), o)
	}
}

var (
	unmarshalerType     = reflect.TypeFor[toml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// value checks one value against Go type t.
func (c *checker) value(v any, t reflect.Type, p path, o owner) {
	pt := reflect.PointerTo(t)
	switch {
	case pt.Implements(unmarshalerType):
		if err := reflect.New(t).Interface().(toml.Unmarshaler).UnmarshalTOML(v); err != nil {
			c.add(p, o, "key %q: %v", p.dotted(), err)
		}
		return
	case pt.Implements(textUnmarshalerType):
		s, ok := v.(string)
		if !ok {
			c.mismatch(v, t, p, o)
		} else if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			c.add(p, o, "key %q: %v", p.dotted(), err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		c.value(v, t.Elem(), p, o)
	case reflect.Struct:
		if m, ok := v.(map[string]any); ok {
			c.table(m, t, p, o)
		} else {
			c.mismatch(v, t, p, o)
		}
	case reflect.Slice:
		c.slice(v, t, p, o)
	default:
		if !scalarFits(v, t) {
			c.mismatch(v, t, p, o)
		}
	}
}

// slice checks an array, or an array of tables when t's elements are structs.
func (c *checker) slice(v any, t reflect.Type, p path, o owner) {
	et := t.Elem()
	if et.Kind() == reflect.Struct {
		tables, ok := tableArray(v)
		if !ok {
			c.mismatch(v, t, p, o)
			return
		}
		for i, m := range tables {
			if et == reflect.TypeFor[Device]() {
				c.device(m, p.with(index(i)))
			} else {
				c.table(m, et, p.with(index(i)), o)
			}
		}
		return
	}
	elems, ok := v.([]any)
	if !ok {
		c.mismatch(v, t, p, o)
		return
	}
	for _, e := range elems {
		c.value(e, et, p, o)
	}
}

// tableArray returns the tables of an array of tables ([[x]] headers or an inline array of
// tables); false when v is something else.
func tableArray(v any) ([]map[string]any, bool) {
	if tables, ok := v.([]map[string]any); ok {
		return tables, true
	}
	elems, ok := v.([]any)
	if !ok {
		return nil, false
	}
	tables := make([]map[string]any, len(elems))
	for i, e := range elems {
		if tables[i], ok = e.(map[string]any); !ok {
			return nil, false
		}
	}
	return tables, true
}

// device checks one [[device]] table: the common keys against Device, the others against the
// device settings of the driver its driver key names, and its tags likewise. The keys of a
// device whose driver is missing or unknown are not judged: validation reports the driver.
func (c *checker) device(m map[string]any, p path) {
	o := owner{device: stringAt(m, "name")}
	spec, known := c.reg.lookup(stringAt(m, "driver"))
	common := fieldsByKey(reflect.TypeFor[Device]())
	var own map[string]reflect.Type
	if known {
		own = fieldsByKey(settingsType(spec.NewDevice))
	}
	for _, k := range sortedKeys(m) {
		ft, isCommon := common[k]
		switch {
		case k == "tag":
			c.tags(m[k], p.with(k), o, spec, known)
		case isCommon:
			c.value(m[k], ft, p.with(k), o)
		case known:
			c.driverKey(m[k], own, p.with(k), o, spec.Name, false)
		}
	}
}

// tags checks the [[device.tag]] tables of a device whose driver is spec (if known).
func (c *checker) tags(v any, p path, o owner, spec DriverSpec, known bool) {
	tables, ok := tableArray(v)
	if !ok {
		c.mismatch(v, reflect.TypeFor[[]Tag](), p, o)
		return
	}
	common := fieldsByKey(reflect.TypeFor[Tag]())
	var own map[string]reflect.Type
	if known {
		own = fieldsByKey(settingsType(spec.NewTag))
	}
	kp := p.with("", "") // each key's path in turn: value and what it calls copy what they keep
	for j, m := range tables {
		to := owner{device: o.device, tag: stringAt(m, "name")}
		kp[len(p)] = index(j)
		for _, k := range sortedKeys(m) {
			kp[len(p)+1] = k
			if ft, isCommon := common[k]; isCommon {
				c.value(m[k], ft, kp, to)
			} else if known {
				c.driverKey(m[k], own, kp, to, spec.Name, true)
			}
		}
	}
}

// driverKey checks a key that is not a common one against the driver's settings own.
func (c *checker) driverKey(v any, own map[string]reflect.Type, p path, o owner, driver string, tag bool) {
	key := p[len(p)-1]
	switch ft, ok := own[key]; {
	case ok:
		c.value(v, ft, p, o)
	case c.reg.otherHas(driver, key, tag):
		c.add(p, o, "key %q does not apply to driver %s", key, driver)
	default:
		c.add(p, o, "unknown key %q", p.dotted())
	}
}

// stringAt returns m[key] when it is a string, else "".
func stringAt(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// scalarFits reports whether TOML value v can be stored in a Go value of kind t.Kind().
func scalarFits(v any, t reflect.Type) bool {
	const maxExactFloat = 1 << 53
	switch t.Kind() {
	case reflect.String:
		_, ok := v.(string)
		return ok
	case reflect.Bool:
		_, ok := v.(bool)
		return ok
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(int64)
		return ok && !reflect.Zero(t).OverflowInt(n)
	case reflect.Float32, reflect.Float64:
		if n, ok := v.(int64); ok {
			return n >= -maxExactFloat && n <= maxExactFloat
		}
		f, ok := v.(float64)
		return ok && (t.Kind() == reflect.Float64 || math.Abs(f) <= math.MaxFloat32 || math.IsInf(f, 0) || math.IsNaN(f))
	}
	return false
}

// mismatch reports a value of the wrong type.
func (c *checker) mismatch(v any, t reflect.Type, p path, o owner) {
	c.add(p, o, "key %q must be %s, not %s", p.dotted(), describeType(t), describeValue(v))
}

func describeType(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Duration]():
		return `a duration string such as "500ms" or "1m30s"`
	case reflect.TypeFor[[]string]():
		return "an array of strings"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct:
		return "a table"
	case reflect.Pointer:
		return describeType(t.Elem())
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct {
			return "an array of tables"
		}
	}
	return "a " + t.String()
}

func describeValue(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	}
	return "a date or time"
}
