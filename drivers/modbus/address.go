package modbus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// table is one of the four Modbus data tables.
type table uint8

const (
	coils table = iota + 1
	discreteInputs
	inputRegisters
	holdingRegisters
)

// tableNames are the long names used in plans and messages.
var tableNames = [...]string{
	coils:            "coils",
	discreteInputs:   "discrete inputs",
	inputRegisters:   "input registers",
	holdingRegisters: "holding registers",
}

func (t table) String() string {
	if int(t) < len(tableNames) && tableNames[t] != "" {
		return tableNames[t]
	}
	return "table(" + strconv.Itoa(int(t)) + ")"
}

// isBit reports whether the table holds bits (coils, discrete inputs) rather than registers.
func (t table) isBit() bool { return t == coils || t == discreteInputs }

// writable reports whether Modbus can write the table at all.
func (t table) writable() bool { return t == coils || t == holdingRegisters }

// digit is the table's leading digit in the 5/6-digit notation.
func (t table) digit() byte {
	switch t {
	case coils:
		return '0'
	case discreteInputs:
		return '1'
	case inputRegisters:
		return '3'
	}
	return '4'
}

// prefix is the table's short prefix in the zero-based notation ("hr" in "hr:0").
func (t table) prefix() string {
	switch t {
	case coils:
		return "co"
	case discreteInputs:
		return "di"
	case inputRegisters:
		return "ir"
	}
	return "hr"
}

// unit names n of what the table holds: "1 register", "8 coils".
func (t table) unit(n uint16) string {
	s := "register"
	switch t {
	case coils:
		s = "coil"
	case discreteInputs:
		s = "discrete input"
	}
	if n != 1 {
		s += "s"
	}
	return s
}

// prefixes maps the zero-based prefixes to their tables.
var prefixes = map[string]table{
	"hr": holdingRegisters, "holding": holdingRegisters,
	"ir": inputRegisters, "input": inputRegisters,
	"di": discreteInputs, "discrete": discreteInputs,
	"co": coils, "coil": coils,
}

// address is a parsed tag address.
type address struct {
	table  table
	offset uint16 // zero-based, as sent on the wire
	bit    int    // bit inside a register, 0 (LSB) … 15; -1 when the address is not a bit
	// zeroBased is set for a device whose five- and six-digit addresses count from 0
	// (zero_based): "40000" is offset 0 there. String writes the address that way back.
	zeroBased bool
}

// parseAddress parses the notations described in the package comment; zeroBased makes the
// five- and six-digit notations count from 0 (the device's zero_based).
func parseAddress(s string, zeroBased bool) (address, error) {
	a := address{bit: -1, zeroBased: zeroBased}
	if s == "" {
		return a, errors.New("address is missing")
	}
	main, bit, hasBit := strings.Cut(s, ".")
	var err error
	if p, rest, ok := strings.Cut(main, ":"); ok {
		a.table, a.offset, err = parsePrefixed(strings.ToLower(p), rest)
	} else {
		a.table, a.offset, err = parseNumeric(main, zeroBased)
	}
	if err != nil {
		return a, fmt.Errorf("address %q: %w", s, err)
	}
	if hasBit {
		if a.table.isBit() {
			return a, fmt.Errorf("address %q: a bit index needs a register, not %s", s, a.table)
		}
		n, err := strconv.Atoi(bit)
		if err != nil || n < 0 || n > 15 || bit != strconv.Itoa(n) {
			return a, fmt.Errorf("address %q: bit index must be 0…15", s)
		}
		a.bit = n
	}
	return a, nil
}

func parsePrefixed(prefix, rest string) (table, uint16, error) {
	t, ok := prefixes[prefix]
	if !ok {
		return 0, 0, fmt.Errorf("unknown table %q (want hr, ir, di, co or holding, input, discrete, coil)", prefix)
	}
	n, err := strconv.ParseUint(rest, 10, 16)
	if err != nil || rest == "" || rest[0] == '+' {
		return 0, 0, errors.New("offset must be a number 0…65535")
	}
	return t, uint16(n), nil
}

func parseNumeric(s string, zeroBased bool) (table, uint16, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, 0, errors.New(`want 40001…49999, 400001…465536 (also 3…, 1…, 0… for the other tables) or a prefix such as "hr:0"`)
		}
	}
	if len(s) != 5 && len(s) != 6 {
		return 0, 0, errors.New(`want five or six digits such as "40001" or "400001", or a zero-based form such as "hr:0" (coils: write "00001" as a string)`)
	}
	var t table
	switch s[0] {
	case '0':
		t = coils
	case '1':
		t = discreteInputs
	case '3':
		t = inputRegisters
	case '4':
		t = holdingRegisters
	default:
		return 0, 0, fmt.Errorf("leading digit %c names no table (0 coils, 1 discrete inputs, 3 input registers, 4 holding registers)", s[0])
	}
	n, _ := strconv.Atoi(s[1:])
	first, last := 1, 9999
	if len(s) == 6 {
		last = 65536
	}
	if zeroBased {
		first = 0
		if len(s) == 6 {
			last = 65535
		}
	}
	switch {
	case n == 0 && !zeroBased:
		return 0, 0, fmt.Errorf("register number 0 is outside 1…%d (for a device whose manual counts from 0, set zero_based = true)", last)
	case n < first || n > last:
		return 0, 0, fmt.Errorf("register number %d is outside %d…%d", n, first, last)
	}
	return t, uint16(n - first), nil
}

// String formats the address in the six-digit notation ("400001", "400001.3"; "400000" for
// the same register of a zero-based device).
func (a address) String() string { return string(a.appendTo(make([]byte, 0, 10))) }

// appendTo appends String's text to b.
func (a address) appendTo(b []byte) []byte {
	n := int(a.offset) + 1
	if a.zeroBased {
		n--
	}
	b = append(b, a.table.digit())
	for p := 10000; p > 1 && n < p; p /= 10 { // five digits at least, as %05d
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, int64(n), 10)
	if a.bit >= 0 {
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(a.bit), 10)
	}
	return b
}
