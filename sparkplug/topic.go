package sparkplug

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Namespace is the Sparkplug B topic namespace.
const Namespace = "spBv1.0"

// MessageType is the message type element of a Sparkplug topic.
type MessageType string

// Message types.
const (
	NBIRTH MessageType = "NBIRTH"
	NDEATH MessageType = "NDEATH"
	DBIRTH MessageType = "DBIRTH"
	DDEATH MessageType = "DDEATH"
	NDATA  MessageType = "NDATA"
	DDATA  MessageType = "DDATA"
	NCMD   MessageType = "NCMD"
	DCMD   MessageType = "DCMD"
	STATE  MessageType = "STATE"
)

// IsDevice reports whether messages of this type carry a device id.
func (t MessageType) IsDevice() bool {
	return t == DBIRTH || t == DDEATH || t == DDATA || t == DCMD
}

func (t MessageType) valid() bool {
	switch t {
	case NBIRTH, NDEATH, DBIRTH, DDEATH, NDATA, DDATA, NCMD, DCMD:
		return true
	}
	return false
}

// ErrTopic is wrapped by topic parsing and identifier errors.
var ErrTopic = errors.New("invalid sparkplug topic")

// ValidID checks a group, edge node, device or host id: non-empty UTF-8 without '+', '/' or '#'.
func ValidID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty id", ErrTopic)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: id %q is not valid UTF-8", ErrTopic, id)
	case strings.ContainsAny(id, "+/#"):
		return fmt.Errorf("%w: id %q contains '+', '/' or '#'", ErrTopic, id)
	case strings.ContainsRune(id, 0):
		return fmt.Errorf("%w: id %q contains NUL", ErrTopic, id)
	}
	return nil
}

// Topic is a parsed edge node or device topic: spBv1.0/<Group>/<Type>/<EdgeNode>[/<Device>].
type Topic struct {
	Group    string
	Type     MessageType
	EdgeNode string
	Device   string // only for DBIRTH, DDEATH, DDATA, DCMD
}

// String builds the topic. It does not validate; use ValidID on configured ids.
func (t Topic) String() string {
	s := Namespace + "/" + t.Group + "/" + string(t.Type) + "/" + t.EdgeNode
	if t.Device != "" {
		s += "/" + t.Device
	}
	return s
}

// NodeTopic returns spBv1.0/<group>/<typ>/<edge>.
func NodeTopic(group string, typ MessageType, edge string) string {
	return Topic{Group: group, Type: typ, EdgeNode: edge}.String()
}

// DeviceTopic returns spBv1.0/<group>/<typ>/<edge>/<device>.
func DeviceTopic(group string, typ MessageType, edge, device string) string {
	return Topic{Group: group, Type: typ, EdgeNode: edge, Device: device}.String()
}

// ParseTopic parses an edge node or device topic. STATE topics are not accepted here (see
// ParseState). Every id is checked with ValidID, and device ids must appear exactly on the
// device message types.
func ParseTopic(topic string) (Topic, error) {
	parts := strings.Split(topic, "/")
	if len(parts) < 4 || len(parts) > 5 || parts[0] != Namespace {
		return Topic{}, fmt.Errorf("%w: %q", ErrTopic, topic)
	}
	t := Topic{Group: parts[1], Type: MessageType(parts[2]), EdgeNode: parts[3]}
	if !t.Type.valid() {
		return Topic{}, fmt.Errorf("%w: %q: unknown message type %q", ErrTopic, topic, parts[2])
	}
	if len(parts) == 5 {
		t.Device = parts[4]
	}
	if t.Type.IsDevice() != (len(parts) == 5) {
		return Topic{}, fmt.Errorf("%w: %q: device id presence does not match %s", ErrTopic, topic, t.Type)
	}
	for _, id := range parts[1:] {
		if err := ValidID(id); err != nil {
			return Topic{}, fmt.Errorf("%q: %w", topic, err)
		}
	}
	return t, nil
}

// StateTopic returns the Sparkplug 3.0 primary host STATE topic, spBv1.0/STATE/<host>.
func StateTopic(host string) string { return Namespace + "/STATE/" + host }

// LegacyStateTopic returns the Sparkplug 2.2 primary host STATE topic, STATE/<host>.
func LegacyStateTopic(host string) string { return "STATE/" + host }

// parseStateTopic returns the host id of a 3.0 or legacy STATE topic.
func parseStateTopic(topic string) (host string, legacy bool, err error) {
	switch {
	case strings.HasPrefix(topic, Namespace+"/STATE/"):
		host = strings.TrimPrefix(topic, Namespace+"/STATE/")
	case strings.HasPrefix(topic, "STATE/"):
		host, legacy = strings.TrimPrefix(topic, "STATE/"), true
	default:
		return "", false, fmt.Errorf("%w: %q is not a STATE topic", ErrTopic, topic)
	}
	if err := ValidID(host); err != nil {
		return "", false, fmt.Errorf("%q: %w", topic, err)
	}
	return host, legacy, nil
}
