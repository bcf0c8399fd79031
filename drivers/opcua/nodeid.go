package opcua

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gopcua/opcua/ua"
)

// maxNodeIDLen bounds a node id's text: OPC UA limits string identifiers to 4096 bytes (Part 3,
// 8.2.4); a namespace URI and the prefixes fit in the rest.
const maxNodeIDLen = 8192

// NodeID is a node id as written in a tag map, checked for syntax: a namespace (an index, ns=,
// or a URI, nsu=, resolved against the server's namespace array at connect) and an identifier
// of one of the four kinds (i= numeric, s= string, g= GUID, b= opaque base64).
type NodeID struct {
	Namespace    uint16 // with NamespaceURI empty
	NamespaceURI string // nsu=…; resolved at connect
	Kind         byte   // 'i', 's', 'g' or 'b'
	Numeric      uint32 // i=
	Text         string // s= string, g= GUID (canonical lower case), b= raw bytes
}

// ParseNodeID parses the text forms of OPC UA Part 6, 5.3.1.10: "i=85", "ns=2;s=Separator.Level",
// "ns=3;g=09087e75-8e5e-499b-954f-f2a9603db28a", "ns=1;b=M/RbKBsRVkePCePcx24oRA==" and
// "nsu=http://example.com/UA/;s=Level". The identifier's kind is required: "ns=2;Level" is
// refused rather than guessed.
func ParseNodeID(s string) (NodeID, error) {
	var id NodeID
	if s == "" {
		return id, errors.New("node id is empty")
	}
	if len(s) > maxNodeIDLen {
		return id, fmt.Errorf("node id is %d bytes long, more than %d", len(s), maxNodeIDLen)
	}
	if !utf8.ValidString(s) {
		return id, errors.New("node id is not valid UTF-8")
	}
	rest := s
	switch {
	case strings.HasPrefix(rest, "nsu="):
		uri, ident, ok := cutIdentifier(rest[len("nsu="):])
		if !ok {
			return id, fmt.Errorf("node id %q: nsu=URI must be followed by ;i=, ;s=, ;g= or ;b=", s)
		}
		if uri == "" {
			return id, fmt.Errorf("node id %q: the namespace URI is empty", s)
		}
		id.NamespaceURI, rest = uri, ident
	case strings.HasPrefix(rest, "ns="):
		nsText, ident, ok := strings.Cut(rest[len("ns="):], ";")
		if !ok {
			return id, fmt.Errorf("node id %q: ns=N must be followed by ;i=, ;s=, ;g= or ;b=", s)
		}
		n, err := parseDecimal(nsText, math.MaxUint16)
		if err != nil {
			return id, fmt.Errorf("node id %q: namespace index %q must be 0…65535", s, nsText)
		}
		id.Namespace, rest = uint16(n), ident
	}
	if len(rest) < 2 || rest[1] != '=' {
		return id, fmt.Errorf("node id %q: the identifier must start with i=, s=, g= or b=", s)
	}
	id.Kind = rest[0]
	value := rest[2:]
	switch id.Kind {
	case 'i':
		n, err := parseDecimal(value, math.MaxUint32)
		if err != nil {
			return id, fmt.Errorf("node id %q: numeric identifier %q must be 0…4294967295", s, value)
		}
		id.Numeric = uint32(n)
	case 's':
		if value == "" {
			return id, fmt.Errorf("node id %q: the string identifier is empty", s)
		}
		id.Text = value
	case 'g':
		g, err := canonicalGUID(value)
		if err != nil {
			return id, fmt.Errorf("node id %q: %w", s, err)
		}
		id.Text = g
	case 'b':
		b, err := base64.StdEncoding.Strict().DecodeString(value)
		if err != nil || len(b) == 0 {
			return id, fmt.Errorf("node id %q: opaque identifier %q is not non-empty standard base64", s, value)
		}
		id.Text = string(b)
	default:
		return id, fmt.Errorf("node id %q: the identifier must start with i=, s=, g= or b=", s)
	}
	return id, nil
}

// cutIdentifier splits "URI;x=…" at the first ";" that starts an identifier, so that a URI may
// itself contain ";".
func cutIdentifier(s string) (uri, ident string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ';' && i+2 < len(s) && s[i+2] == '=' && strings.IndexByte("isgb", s[i+1]) >= 0 {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// parseDecimal parses a plain decimal number (digits only, no sign, no leading zeros beyond
// "0") not above limit.
func parseDecimal(s string, limit uint64) (uint64, error) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, errors.New("not a plain decimal number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a plain decimal number")
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > limit {
		return 0, errors.New("out of range")
	}
	return n, nil
}

// canonicalGUID checks the 8-4-4-4-12 hex form and returns it in lower case.
func canonicalGUID(s string) (string, error) {
	if len(s) != 36 {
		return "", fmt.Errorf("GUID %q must have the form 8-4-4-4-12 hex digits", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", fmt.Errorf("GUID %q must have the form 8-4-4-4-12 hex digits", s)
			}
		default:
			if !isHex(c) {
				return "", fmt.Errorf("GUID %q must have the form 8-4-4-4-12 hex digits", s)
			}
		}
	}
	return strings.ToLower(s), nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// String formats the node id in the form ParseNodeID reads.
func (n NodeID) String() string {
	var b strings.Builder
	switch {
	case n.NamespaceURI != "":
		b.WriteString("nsu=" + n.NamespaceURI + ";")
	case n.Namespace != 0:
		b.WriteString("ns=" + strconv.Itoa(int(n.Namespace)) + ";")
	}
	switch n.Kind {
	case 'i':
		b.WriteString("i=" + strconv.FormatUint(uint64(n.Numeric), 10))
	case 's':
		b.WriteString("s=" + n.Text)
	case 'g':
		b.WriteString("g=" + n.Text)
	case 'b':
		b.WriteString("b=" + base64.StdEncoding.EncodeToString([]byte(n.Text)))
	}
	return b.String()
}

// resolve returns the node id for the wire, looking a namespace URI up in the server's
// namespace array.
func (n NodeID) resolve(namespaces []string) (*ua.NodeID, error) {
	ns := n.Namespace
	if n.NamespaceURI != "" {
		i := slices.Index(namespaces, n.NamespaceURI)
		if i < 0 || i > math.MaxUint16 {
			return nil, fmt.Errorf("namespace %q is not in the server's namespace array", n.NamespaceURI)
		}
		ns = uint16(i)
	}
	switch n.Kind {
	case 'i':
		return ua.NewNumericNodeID(ns, n.Numeric), nil
	case 's':
		return ua.NewStringNodeID(ns, n.Text), nil
	case 'g':
		return ua.NewGUIDNodeID(ns, n.Text), nil
	case 'b':
		return ua.NewByteStringNodeID(ns, []byte(n.Text)), nil
	}
	return nil, fmt.Errorf("node id %q has no identifier", n.String())
}

// formatNodeID formats a node id from the wire the way a tag map writes it.
func formatNodeID(id *ua.NodeID) string {
	if id == nil {
		return ""
	}
	n := NodeID{Namespace: id.Namespace()}
	switch id.Type() {
	case ua.NodeIDTypeTwoByte, ua.NodeIDTypeFourByte, ua.NodeIDTypeNumeric:
		n.Kind, n.Numeric = 'i', id.IntID()
	case ua.NodeIDTypeString:
		n.Kind, n.Text = 's', id.StringID()
	case ua.NodeIDTypeGUID:
		n.Kind, n.Text = 'g', strings.ToLower(id.StringID())
	case ua.NodeIDTypeByteString:
		n.Kind = 'b'
		b, err := base64.StdEncoding.DecodeString(id.StringID())
		if err != nil {
			return id.String()
		}
		n.Text = string(b)
	default:
		return id.String()
	}
	return n.String()
}
