package config

import (
	"math"
	"strings"
	"unicode/utf8"
)

// allDevices checks the common keys of every device and tag whose table had no problem of key
// or type. The drivers check the rest (see drivers).
func (v *validator) allDevices() {
	seen := map[string]int{} // lower-cased name → index of the first device with it
	for i := range v.c.Devices {
		d := &v.c.Devices[i]
		if !v.ck.bad(d.path) {
			v.device(d, seen, i)
		}
		v.tags(d)
	}
}

// device checks one device's common keys; seen holds the names of the devices before it.
func (v *validator) device(d *Device, seen map[string]int, i int) {
	p := d.path
	if msg := checkID(d.Name); msg != "" {
		v.add(p.with("name"), d, nil, "device name %s", msg)
	} else if first, dup := seen[strings.ToLower(d.Name)]; dup {
		v.add(p.with("name"), d, nil, "duplicate device name (first at line %d; Ignition ignores case)", v.c.Devices[first].Line)
	} else {
		seen[strings.ToLower(d.Name)] = i
	}
	if d.PollInterval <= 0 {
		v.add(p.with("poll_interval"), d, nil, "poll_interval must be greater than 0")
	}
	if d.PollSchedule != ScheduleClock && d.PollSchedule != ScheduleStart {
		v.add(p.with("poll_schedule"), d, nil, "poll_schedule %q: want %q (polls at whole multiples of poll_interval) or %q (every poll_interval from start)",
			d.PollSchedule, ScheduleClock, ScheduleStart)
	}
	if d.Timeout <= 0 {
		v.add(p.with("timeout"), d, nil, "timeout must be greater than 0")
	}
	if _, known := v.reg.lookup(d.Driver); known {
		return
	}
	if d.Driver == "" {
		v.add(p.with("driver"), d, nil, "driver is required: %s", v.reg.choices())
	} else {
		v.add(p.with("driver"), d, nil, "unknown driver %q: want %s", d.Driver, v.reg.choices())
	}
}

// tags checks the common keys of a device's tags.
func (v *validator) tags(d *Device) {
	seen := map[string]int{}
	for j := range d.Tags {
		t := &d.Tags[j]
		if v.ck.bad(t.path) {
			continue
		}
		if msg := checkTagName(t.Name); msg != "" {
			v.add(t.path.with("name"), d, t, "tag name %s", msg)
		} else if first, dup := seen[strings.ToLower(t.Name)]; dup {
			v.add(t.path.with("name"), d, t, "duplicate tag name in this device (first at line %d; Ignition ignores case)", d.Tags[first].Line)
		} else {
			seen[strings.ToLower(t.Name)] = j
		}
		v.tagNumbers(d, t)
	}
}

func (v *validator) tagNumbers(d *Device, t *Tag) {
	tp := t.path
	if !(t.Deadband >= 0) { // also refuses NaN
		v.add(tp.with("deadband"), d, t, "deadband must be 0 or more, not %v", t.Deadband)
	}
	if !(t.DeadbandPercent >= 0) {
		v.add(tp.with("deadband_percent"), d, t, "deadband_percent must be 0 or more, not %v", t.DeadbandPercent)
	}
	for _, f := range []struct {
		key string
		v   *float64
	}{{"min", t.Min}, {"max", t.Max}} {
		if f.v != nil && (math.IsNaN(*f.v) || math.IsInf(*f.v, 0)) {
			v.add(tp.with(f.key), d, t, "%s must be a finite number", f.key)
		}
	}
	if t.Min != nil && t.Max != nil && *t.Min > *t.Max {
		v.add(tp.with("min"), d, t, "min %v is greater than max %v", *t.Min, *t.Max)
	}
}

// drivers hands every registered driver the devices that use it, to check the driver's part.
func (v *validator) drivers() {
	for _, spec := range v.reg.list() {
		if spec.Validate == nil {
			continue
		}
		var devs []*Device
		for i := range v.c.Devices {
			if d := &v.c.Devices[i]; d.Driver == spec.Name {
				devs = append(devs, d)
			}
		}
		if len(devs) > 0 {
			v.errs = append(v.errs, spec.Validate(devs)...)
		}
	}
}

// checkTagName checks a tag (Sparkplug metric) name; it returns what is wrong, or "".
func checkTagName(name string) string {
	switch {
	case name == "":
		return "is required"
	case !utf8.ValidString(name):
		return "is not valid UTF-8"
	case strings.ContainsAny(name, "+#"):
		return "must not contain '+' or '#'"
	case strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/"):
		return "must not start or end with '/'"
	case strings.Contains(name, "//"):
		return "must not have an empty folder (\"//\")"
	}
	return ""
}
