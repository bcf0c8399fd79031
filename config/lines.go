package config

import (
	"slices"
	"strconv"
	"strings"
)

// BurntSushi/toml keeps one position per dotted key name, so the keys of the second and later
// [[device]] and [[device.tag]] tables share the position of the last one. keyLines finds the
// line of every table header and key itself. It reads a file the TOML parser has already
// accepted; on anything it does not understand it skips to the next line, so at worst a line
// number is missing (0), never wrong.

// A path names one key, with "[i]" segments for elements of arrays of tables:
// device.[0].tag.[2].address.
type path []string

func (p path) key() string { return strings.Join(p, "\x00") }

// keyWith is p.with(segs...).key(), without the copy of p.
func (p path) keyWith(segs []string) string {
	n := 0
	for _, s := range p {
		n += len(s) + 1
	}
	for _, s := range segs {
		n += len(s) + 1
	}
	var b strings.Builder
	b.Grow(n)
	for i, s := range p {
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(s)
	}
	for i, s := range segs {
		if i > 0 || len(p) > 0 {
			b.WriteByte(0)
		}
		b.WriteString(s)
	}
	return b.String()
}

// with returns a copy of p with segs appended.
func (p path) with(segs ...string) path { return append(append(path{}, p...), segs...) }

// appendIndex appends the path segment for element i of an array, and the separator after it.
func appendIndex(b []byte, i int) []byte {
	return append(strconv.AppendInt(append(b, '['), int64(i), 10), ']', '\x00')
}

// index returns the path segment for element i of an array.
func index(i int) string { return "[" + strconv.Itoa(i) + "]" }

// lineMap holds the line of every header and key in a file.
type lineMap map[string]int

// tableKeys are the names of the keys written in every device's table and its tags', taken
// from the parse tree (collect, as the decoder finishes each device) so that the tree can be garbage before the file's lines
// are found (keepLines): at 40,000 tags the tree is some 40 MB and the lineMap 13 MB, and
// Load's peak is lower when the two are never in memory together.
type tableKeys struct {
	names   []string          // every key name, cloned out of the file's text; keyLine.name numbers them
	ids     map[string]uint32 // names' indices
	devices []deviceKeys      // in the order of Config.Devices
}

// deviceKeys are the keys of one device's table, then of each of its tags' in turn.
type deviceKeys struct {
	ids  []uint32 // indices in tableKeys.names
	own  int      // ids[:own] are the device's own keys
	ends []int    // where each tag's keys end in ids
}

// collect finds the keys written in the table of device d, the next device, and of each of
// its tags in dev, its table as the TOML parser read it (nil when there is none).
func (k *tableKeys) collect(d *Device, dev map[string]any) {
	if k.ids == nil {
		k.ids = map[string]uint32{}
	}
	k.devices = append(k.devices, deviceKeys{})
	dk := &k.devices[len(k.devices)-1]
	add := func(table map[string]any) {
		for name := range table {
			id, seen := k.ids[name]
			if !seen {
				id = uint32(len(k.names))
				k.ids[name] = id
				k.names = append(k.names, strings.Clone(name)) // name is part of the file's text: do not keep that
			}
			dk.ids = append(dk.ids, id)
		}
	}
	add(dev)
	dk.own = len(dk.ids)
	rawTags, _ := dev["tag"].([]map[string]any)
	dk.ends = make([]int, len(d.Tags))
	for j := range dk.ends {
		if j < len(rawTags) {
			add(rawTags[j])
		}
		dk.ends[j] = len(dk.ids)
	}
}

// keyLine is the line of one key written in a device's or a tag's table. Devices and tags keep
// these after Load instead of the file's lineMap, which holds every key of the file under its
// full path and is garbage once Load returns: at 40,000 tags the map and its keys are tens of
// megabytes, these a few bytes a key.
type keyLine struct {
	name uint32 // the key's name: an index in Device.keyNames
	line uint32
}

// keepLines gives every device of c and every tag of theirs the line of its header and the
// lines of the keys k found written in its table, from lines.
func (k *tableKeys) keepLines(c *Config, lines lineMap) {
	var scratch []keyLine
	var ends []int // where each tag's keys end in scratch
	buf := make([]byte, 0, 64)
	add := func(ids []uint32, prefix []byte) {
		for _, id := range ids {
			if l, ok := lines[string(append(prefix, k.names[id]...))]; ok && l > 0 {
				scratch = append(scratch, keyLine{name: id, line: uint32(l)})
			}
		}
	}
	for i := range c.Devices {
		d, dk := &c.Devices[i], &k.devices[i]
		d.Line = lines.line(d.path)
		scratch, ends = scratch[:0], ends[:0]
		buf = appendIndex(append(buf[:0], "device\x00"...), i)
		devPrefix := len(buf)
		add(dk.ids[:dk.own], buf)
		devEnd, from := len(scratch), dk.own
		for j := range d.Tags {
			d.Tags[j].Line = lines.line(d.Tags[j].path)
			buf = appendIndex(append(buf[:devPrefix], "tag\x00"...), j)
			add(dk.ids[from:dk.ends[j]], buf)
			from = dk.ends[j]
			ends = append(ends, len(scratch)-devEnd)
		}
		// The device's own keys apart from its tags': the gateway keeps devices, not tags.
		d.keys = slices.Clone(scratch[:devEnd])
		tagKeys, from := slices.Clone(scratch[devEnd:]), 0
		for j, to := range ends {
			d.Tags[j].keys, from = tagKeys[from:to:to], to
		}
	}
	for i := range c.Devices {
		c.Devices[i].keyNames = k.names
	}
}

// line returns the line of p or, failing that, of its closest ancestor that has one.
func (m lineMap) line(p path) int {
	for n := len(p); n > 0; n-- {
		if l, ok := m[p[:n].key()]; ok {
			return l
		}
	}
	return 0
}

type lineScanner struct {
	src    string
	pos    int
	line   int
	lines  lineMap
	ctx    path           // the current table, with array indices
	counts map[string]int // elements seen so far, per array-of-tables name (no indices)
}

// keyLines returns the line of every table header and key in src.
func keyLines(src string) lineMap {
	s := &lineScanner{src: src, line: 1, lines: lineMap{}, counts: map[string]int{}}
	for s.skipSpace(true); s.pos < len(s.src); s.skipSpace(true) {
		if s.src[s.pos] == '[' {
			s.header()
		} else if segs := s.keyName(); segs != nil && s.peek() == '=' {
			s.pos++
			s.lines[s.ctx.keyWith(segs)] = s.line
			s.skipValue()
		}
		s.skipLine()
	}
	return s.lines
}

// header reads a [table] or [[array]] header.
func (s *lineScanner) header() {
	s.pos++
	array := s.peek() == '['
	if array {
		s.pos++
	}
	segs := s.keyName()
	if segs == nil {
		return
	}
	// Resolve the arrays the header passes through to their current (last) element.
	s.ctx = nil
	name := ""
	for i, seg := range segs {
		name += "\x00" + seg
		s.ctx = append(s.ctx, seg)
		if n, ok := s.counts[name]; ok && (i < len(segs)-1 || !array) {
			s.ctx = append(s.ctx, index(n-1))
		}
	}
	if array {
		if _, seen := s.lines[s.ctx.key()]; !seen {
			s.lines[s.ctx.key()] = s.line // the array itself is where its first element starts
		}
		s.ctx = append(s.ctx, index(s.counts[name]))
		s.counts[name]++
		for k := range s.counts { // nested arrays start again in the new element
			if strings.HasPrefix(k, name+"\x00") {
				delete(s.counts, k)
			}
		}
	}
	s.lines[s.ctx.key()] = s.line
}

func (s *lineScanner) peek() byte {
	if s.pos < len(s.src) {
		return s.src[s.pos]
	}
	return 0
}

// skipSpace skips blanks and, with newlines, also line breaks and comments.
func (s *lineScanner) skipSpace(newlines bool) {
	for s.pos < len(s.src) {
		switch c := s.src[s.pos]; {
		case c == ' ' || c == '\t' || c == '\r':
			s.pos++
		case c == '\n' && newlines:
			s.pos++
			s.line++
		case c == '#' && newlines:
			s.skipLine()
		default:
			return
		}
	}
}

// skipLine moves to the start of the next line.
func (s *lineScanner) skipLine() {
	if i := strings.IndexByte(s.src[s.pos:], '\n'); i >= 0 {
		s.pos += i + 1
		s.line++
	} else {
		s.pos = len(s.src)
	}
}

// keyName reads a dotted key (bare or quoted parts) and the blanks after it; nil if there is
// none.
func (s *lineScanner) keyName() []string {
	var segs []string
	for {
		s.skipSpace(false)
		seg, ok := s.keyPart()
		if !ok {
			return nil
		}
		segs = append(segs, seg)
		s.skipSpace(false)
		if s.peek() != '.' {
			return segs
		}
		s.pos++
	}
}

func (s *lineScanner) keyPart() (string, bool) {
	start := s.pos
	switch s.peek() {
	case '"':
		end := s.stringEnd(`"`, true)
		if u, err := strconv.Unquote(s.src[start:end]); err == nil {
			return u, true
		}
		return s.src[start+1 : max(start+1, end-1)], true
	case '\'':
		end := s.stringEnd(`'`, false)
		return s.src[start+1 : max(start+1, end-1)], true
	}
	for s.pos < len(s.src) && isBare(s.src[s.pos]) {
		s.pos++
	}
	return s.src[start:s.pos], s.pos > start
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// skipValue moves past the value after a key's '=': a string of any kind, an array or inline
// table (which may span lines), or a scalar that ends the line.
func (s *lineScanner) skipValue() {
	s.skipSpace(false)
	depth := 0
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case strings.HasPrefix(s.src[s.pos:], `"""`):
			s.stringEnd(`"""`, true)
		case strings.HasPrefix(s.src[s.pos:], `'''`):
			s.stringEnd(`'''`, false)
		case c == '"':
			s.stringEnd(`"`, true)
		case c == '\'':
			s.stringEnd(`'`, false)
		case c == '[' || c == '{':
			depth++
			s.pos++
		case c == ']' || c == '}':
			depth--
			s.pos++
		case depth == 0:
			return // a scalar, or the end of the line: the caller skips the rest of the line
		case c == '\n' || c == '#':
			s.skipSpace(true) // line breaks and comments inside an array
		default:
			s.pos++
		}
		if depth <= 0 {
			return
		}
	}
}

// stringEnd moves past a string that starts at s.pos with the delimiter delim and returns the
// position after it. Basic strings honour backslash escapes; a multi-line string's closing
// delimiter may be followed by up to two more quotes that belong to the content.
func (s *lineScanner) stringEnd(delim string, escapes bool) int {
	s.pos += len(delim)
	for s.pos < len(s.src) {
		switch c := s.src[s.pos]; {
		case escapes && c == '\\':
			s.pos++
			if s.peek() == '\n' {
				s.line++
			}
			s.pos++
		case c == '\n':
			if len(delim) == 1 {
				return s.pos // unterminated; leave the newline to the caller
			}
			s.line++
			s.pos++
		case strings.HasPrefix(s.src[s.pos:], delim):
			s.pos += len(delim)
			for extra := 0; len(delim) == 3 && extra < 2 && s.peek() == delim[0]; extra++ {
				s.pos++
			}
			return s.pos
		default:
			s.pos++
		}
	}
	return s.pos
}
