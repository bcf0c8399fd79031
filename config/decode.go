package config

import (
	"encoding"
	"reflect"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// decoder decodes what the schema checker accepted: every key into the field of exactly its
// name (BurntSushi's decoder alone would also take a key that differs in case, which the
// checker refuses), skipping the keys the checker reported, so that a bad value leaves every
// other one decoded.
type decoder struct {
	md  *toml.MetaData
	ck  *checker
	reg *registry
	// done, when set, is called with each device as soon as it is decoded, and the device's
	// part of the parse tree is let go after it (see parseWith).
	done func(i int, dev *Device)
}

// config decodes the top-level tables into c, which holds the defaults, and the devices with
// their drivers' settings.
func (d *decoder) config(top map[string]toml.Primitive, c *Config) {
	devices, hasDevices := top["device"]
	delete(top, "device")
	d.keys(top, reflect.ValueOf(c).Elem(), nil)
	if hasDevices && !d.ck.skipped(path{"device"}) {
		d.devices(devices, c)
	}
}

// devices decodes every [[device]] table: its common keys over the common defaults, its
// driver's keys over the driver's defaults, and likewise for its tags.
func (d *decoder) devices(prim toml.Primitive, c *Config) {
	var tables []map[string]toml.Primitive
	if !d.decode(prim, &tables, path{"device"}) {
		return
	}
	c.Devices = make([]Device, len(tables))
	for i, keys := range tables {
		p := path{"device", index(i)}
		dev := &c.Devices[i]
		*dev = Device{PollInterval: Duration(time.Second), PollSchedule: ScheduleClock, Timeout: Duration(time.Second),
			file: c.File, path: p} // Line: keepLines
		d.keys(keys, reflect.ValueOf(dev).Elem(), p)
		spec, known := d.reg.lookup(dev.Driver)
		if known && !d.ck.bad(p) {
			dev.Settings = d.settings(spec.NewDevice, keys, p)
		}
		var tagKeys []map[string]toml.Primitive
		if tp, ok := keys["tag"]; ok && !d.ck.skipped(p.with("tag")) {
			d.decode(tp, &tagKeys, p.with("tag"))
		}
		for j := range dev.Tags {
			t, tp := &dev.Tags[j], p.with("tag", index(j))
			t.path = tp // Line: keepLines
			if known && !d.ck.bad(tp) && j < len(tagKeys) {
				t.Settings = d.settings(spec.NewTag, tagKeys[j], tp)
			}
		}
		if d.done != nil {
			d.done(i, dev)
		}
		tables[i] = nil // the device's primitives: its part of the tree, once done drops the rest
	}
}

// settings decodes the keys of a table that belong to a driver into a new settings struct.
func (d *decoder) settings(newSettings func() any, keys map[string]toml.Primitive, p path) any {
	s := newSettings()
	d.keys(keys, reflect.ValueOf(s).Elem(), p)
	return s
}

// keys decodes the keys of a table at p that are fields of the struct v.
func (d *decoder) keys(keys map[string]toml.Primitive, v reflect.Value, p path) {
	fp := p.with("") // each key's path in turn: value and what it calls copy what they keep
	for _, f := range fieldsOf(v.Type()).list {
		prim, ok := keys[f.name]
		if !ok {
			continue
		}
		if fp[len(p)] = f.name; !d.ck.skipped(fp) {
			d.value(prim, v.FieldByIndex(f.index), fp)
		}
	}
}

var (
	unmarshalerPtr     = reflect.TypeFor[toml.Unmarshaler]()
	textUnmarshalerPtr = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// value decodes one key's value into v: a table key by key, an array of tables table by
// table, anything else as BurntSushi decodes it.
func (d *decoder) value(prim toml.Primitive, v reflect.Value, p path) {
	t := v.Type()
	custom := reflect.PointerTo(t).Implements(unmarshalerPtr) || reflect.PointerTo(t).Implements(textUnmarshalerPtr)
	switch {
	case !custom && t.Kind() == reflect.Struct:
		var keys map[string]toml.Primitive
		if d.decode(prim, &keys, p) {
			d.keys(keys, v, p)
		}
	case !custom && t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		var elems []toml.Primitive
		if !d.decode(prim, &elems, p) {
			return
		}
		v.Set(reflect.MakeSlice(t, len(elems), len(elems)))
		for i, e := range elems {
			d.value(e, v.Index(i), p.with(index(i)))
		}
	default:
		if d.decode(prim, v.Addr().Interface(), p) {
			detach(v)
		}
	}
}

// detach copies the strings in v, a decoded key. The TOML parser returns a string without
// escapes as a part of the file's text, and one such string kept would keep the whole text.
func detach(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(strings.Clone(v.String()))
	case reflect.Pointer:
		if !v.IsNil() {
			detach(v.Elem())
		}
	case reflect.Slice:
		for i := range v.Len() {
			detach(v.Index(i))
		}
	}
}

// decode decodes prim into out. The schema checker has accepted the value, so a failure means
// the two disagree; it is reported rather than ignored.
func (d *decoder) decode(prim toml.Primitive, out any, p path) bool {
	if err := d.md.PrimitiveDecode(prim, out); err != nil {
		d.ck.add(p, owner{}, "key %q: %v", p.dotted(), err)
		return false
	}
	return true
}
