package broker

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Topic filter arithmetic for the ACL: MQTT 3.1.1 §4.7. A topic is a filter without
// wildcards, so match and covers are one function.

// ValidFilter reports whether f is a valid MQTT topic filter.
func ValidFilter(f string) bool { return CheckFilter(f) == nil }

// CheckFilter says what makes f an invalid MQTT topic filter, or nil: empty, not UTF-8, too
// long or with a NUL, '#' other than as the whole last level, '+' other than as a whole level.
func CheckFilter(f string) error {
	switch {
	case f == "":
		return errors.New("must not be empty")
	case !utf8.ValidString(f):
		return errors.New("is not valid UTF-8")
	case len(f) > 65535:
		return errors.New("is longer than 65535 bytes")
	case strings.ContainsRune(f, 0):
		return errors.New("must not contain a NUL character")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case strings.Contains(l, "#") && (l != "#" || i != len(levels)-1):
			return errors.New("'#' must be the whole last level")
		case strings.Contains(l, "+") && l != "+":
			return errors.New("'+' must be a whole level")
		}
	}
	return nil
}

// covers reports whether every topic that filter f matches is also matched by filter r.
// With f a topic name, it is the usual "r matches f".
func covers(r, f string) bool {
	rl, fl := strings.Split(r, "/"), strings.Split(f, "/")
	dollar := strings.HasPrefix(f, "$")
	for i, fv := range fl {
		if i == len(rl) {
			return false
		}
		rv := rl[i]
		switch {
		case rv == "#":
			return !(i == 0 && dollar) // [MQTT-4.7.2-1]: # and + at the start skip $ topics
		case fv == "#":
			return false
		case rv == "+":
			if i == 0 && dollar {
				return false
			}
		case rv != fv:
			return false
		}
	}
	// f is used up: r must end here too, or end in a # that also matches the parent level.
	return len(rl) == len(fl) || (len(rl) == len(fl)+1 && rl[len(fl)] == "#")
}

// FiltersOverlap reports whether some topic matches both filters a and b, e.g. whether a
// bridge rule's filter can match the gateway's Sparkplug namespace: FiltersOverlap(filter,
// "spBv1.0/#") is true for "+/#" and "#", false for "wellsite/#".
func FiltersOverlap(a, b string) bool {
	al, bl := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; ; i++ {
		switch {
		case i == len(al) && i == len(bl):
			return true
		case i == len(al):
			return bl[i] == "#"
		case i == len(bl):
			return al[i] == "#"
		}
		x, y := al[i], bl[i]
		if i == 0 && (dollarLiteral(x) && wild(y) || dollarLiteral(y) && wild(x)) {
			return false
		}
		if x == "#" || y == "#" {
			return true
		}
		if x != "+" && y != "+" && x != y {
			return false
		}
	}
}

func wild(level string) bool          { return level == "+" || level == "#" }
func dollarLiteral(level string) bool { return strings.HasPrefix(level, "$") }

// anyCovers reports whether one of filters covers f.
func anyCovers(filters []string, f string) bool {
	for _, r := range filters {
		if covers(r, f) {
			return true
		}
	}
	return false
}

// sharedFilter strips "$share/<group>/" from a shared subscription's filter.
func sharedFilter(f string) string {
	rest, ok := strings.CutPrefix(f, "$share/")
	if !ok {
		return f
	}
	if _, filter, ok := strings.Cut(rest, "/"); ok {
		return filter
	}
	return f
}

// topicKind says what a topic is to the gateway's own edge node.
type topicKind int

const (
	topicOther   topicKind = iota // not under the gateway's edge node
	topicOwn                      // a birth, data, death (or anything but a command) under it
	topicCommand                  // its NCMD or a DCMD to one of its devices
)

// kind classifies topic against the edge node: spBv1.0/<group>/<type>/<node>[/<device>].
func (e EdgeNode) kind(topic string) topicKind {
	if e.Node == "" {
		return topicOther
	}
	rest, ok := strings.CutPrefix(topic, "spBv1.0/")
	if !ok {
		return topicOther
	}
	parts := strings.SplitN(rest, "/", 4) // group, type, node, device…
	if len(parts) < 3 || parts[0] != e.Group || parts[2] != e.Node {
		return topicOther
	}
	switch {
	case parts[1] == "NCMD" && len(parts) == 3, parts[1] == "DCMD" && len(parts) == 4:
		return topicCommand
	}
	return topicOwn
}
