package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// The decoder stops at the first value of the wrong type, places every key of the second and
// later [[device]] tables at the line of the last one, and matches key names case-insensitively
// when no name matches exactly. So before decoding, the schema checker walks the parsed file
// against the Config struct and reports every unknown key and every value of the wrong type,
// each at its own line. Only a file that passes is decoded.

// owner names the device and tag a key belongs to, for error messages.
type owner struct{ device, tag string }

// checker collects the problems of one file.
type checker struct {
	file  string
	lines lineMap
	errs  Errors
}

func (c *checker) add(p path, o owner, format string, args ...any) {
	c.errs = append(c.errs, &Error{
		File: c.file, Line: c.lines.line(p), Device: o.device, Tag: o.tag,
		Msg: fmt.Sprintf(format, args...),
	})
}

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

// fieldsByKey maps the TOML names of a struct's fields to their types.
func fieldsByKey(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if name := f.Tag.Get("toml"); name != "" && name != "-" && f.IsExported() {
			m[name] = f.Type
		}
	}
	return m
}

// table checks a table against struct type t.
func (c *checker) table(raw map[string]any, t reflect.Type, p path, o owner) {
	fields := fieldsByKey(t)
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
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
	elems, ok := v.([]any)
	if tables, isTables := v.([]map[string]any); isTables {
		elems, ok = make([]any, len(tables)), true
		for i, m := range tables {
			elems[i] = m
		}
	}
	if !ok {
		c.mismatch(v, t, p, o)
		return
	}
	et := t.Elem()
	for i, e := range elems {
		if et.Kind() != reflect.Struct {
			c.value(e, et, p, o)
			continue
		}
		m, ok := e.(map[string]any)
		if !ok {
			c.mismatch(v, t, p, o)
			return
		}
		name, _ := m["name"].(string)
		eo := o
		switch et {
		case reflect.TypeFor[Device]():
			eo = owner{device: name}
		case reflect.TypeFor[Tag]():
			eo.tag = name
		}
		c.table(m, et, p.with(index(i)), eo)
	}
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
