package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a configuration file.
type Error struct {
	File   string // path of the file; "" when the configuration was built in code
	Line   int    // 1-based; 0 when the problem has no single line
	Device string // device name, when the problem is inside a device
	Tag    string // tag name, when the problem is inside a tag
	Msg    string
}

// Error formats the problem as `FILE:LINE: device "D": tag "T": MSG`, leaving out the parts
// that are empty (":LINE" when Line is 0). Without a file, a line is shown as "line N: ".
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Device != "" {
		fmt.Fprintf(&b, "device %q: ", e.Device)
	}
	if e.Tag != "" {
		fmt.Fprintf(&b, "tag %q: ", e.Tag)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a configuration file, sorted by line.
type Errors []*Error

// Error joins the problems, one per line.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// sort orders the problems by line, keeping the order of problems on the same line.
func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
}

// DeviceError returns a problem with device d, at the line of its [[device]] header.
func (c *Config) DeviceError(d *Device, format string, args ...any) *Error {
	return &Error{File: c.File, Line: d.Line, Device: d.Name, Msg: fmt.Sprintf(format, args...)}
}

// TagError returns a problem with tag t of device d, at the line of its [[device.tag]] header.
func (c *Config) TagError(d *Device, t *Tag, format string, args ...any) *Error {
	return &Error{File: c.File, Line: t.Line, Device: d.Name, Tag: t.Name, Msg: fmt.Sprintf(format, args...)}
}

// Errorf returns a problem with key of the device's [[device]] table, at the key's line; at
// the table's header when key is "" or not written in the file. Drivers report with it.
func (d *Device) Errorf(key, format string, args ...any) *Error {
	return &Error{File: d.file, Line: d.lineOf(d.keys, key, d.Line), Device: d.Name, Msg: fmt.Sprintf(format, args...)}
}

// TagErrorf returns a problem with key of tag t of the device, at the key's line; at the
// tag's [[device.tag]] header when key is "" or not written in the file.
func (d *Device) TagErrorf(t *Tag, key, format string, args ...any) *Error {
	return &Error{File: d.file, Line: d.lineOf(t.keys, key, t.Line), Device: d.Name, Tag: t.Name,
		Msg: fmt.Sprintf(format, args...)}
}

// lineOf is the line of key among a table's keys, or header when the file does not say (a key
// left out, or a device built in code).
func (d *Device) lineOf(keys []keyLine, key string, header int) int {
	if key == "" {
		return header
	}
	for _, k := range keys {
		if int(k.name) < len(d.keyNames) && d.keyNames[k.name] == key {
			return int(k.line)
		}
	}
	return header
}
