// Package modbus is wellgate's Modbus driver: Modbus TCP (several unit ids sharing one connection
// per endpoint) and Modbus RTU over serial lines (several slaves per bus), built on
// github.com/goburrow/modbus and github.com/goburrow/serial.
//
// # Addresses
//
// A tag's address names a table and a zero-based offset. Two notations are accepted:
//
//	notation          table               first address   offset
//	40001 … 49999     holding registers   40001           address − 40001
//	400001 … 465536   holding registers   400001          address − 400001
//	30001 / 300001    input registers     (as above)
//	10001 / 100001    discrete inputs
//	00001 / 000001    coils
//	hr:0  holding:0   holding registers   zero-based      as written
//	ir:0  input:0     input registers
//	di:0  discrete:0  discrete inputs
//	co:0  coil:0      coils
//
// The five- and six-digit forms are one-based ("40001" is holding register offset 0, the
// first register on the wire); the prefixed forms are zero-based offsets as they travel in the
// request ("hr:0" is the same register as "40001"). A coil address must be written as a string
// ("00001"): the integer 1 is not a valid address. A bit inside a register is addressed with a
// ".N" suffix, "40001.3" or "hr:0.3", where bit 0 is the least significant bit of the register
// value and N is 0…15; such a tag is a bool.
//
// # Types and byte orders
//
// Types: bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 and string (length =
// number of registers, two characters each). A tag without a type is a bool in the bit tables
// (coils, discrete inputs) and a uint16 in the register tables.
//
// Byte orders name where the bytes of the value, most significant first (A B C D …), travel on
// the wire, register by register:
//
//	order   32-bit on the wire   64-bit on the wire   16-bit          string
//	ABCD    A B  C D             A B  C D  E F  G H   A B             high byte first
//	CDAB    C D  A B             G H  E F  C D  A B   A B             high byte first
//	BADC    B A  D C             B A  D C  F E  H G   B A (swapped)   low byte first
//	DCBA    D C  B A             H G  F E  D C  B A   B A (swapped)   low byte first
//
// ABCD is big endian (the Modbus default), CDAB swaps words (registers; for 64-bit values the
// four registers are in reverse order), BADC swaps the two bytes inside each register, and DCBA
// is little endian. 16-bit values take the byte swap of BADC/DCBA, and strings the byte order
// inside each register; bits inside a register (40001.3) always count from the register value's
// least significant bit, whatever the byte order. The device's byte_order (default ABCD) applies
// to every tag; a tag's own byte_order overrides it. Strings have trailing NULs and spaces
// trimmed, and bytes that are not UTF-8 are replaced by U+FFFD.
//
// # Sparkplug types
//
// Every tag maps to the tightest Sparkplug type that holds all of its values: bool → Boolean,
// int16 → Int16, uint16 → UInt16, int32 → Int32, uint32 → UInt32, int64 → Int64, uint64 → UInt64,
// float32 → Float, float64 → Double, string → String. A scaled tag (scale and/or offset set;
// value = raw × scale + offset) is always a Double: with a decimal scale such as 0.1 the result
// is not exactly representable in any binary float, Double keeps every 32-bit raw value exact,
// and the metric's type then does not change when an operator edits the scale.
//
// # Request planning
//
// For each device and table the driver reads its tags with the fewest requests that respect the
// device's max_registers (max_bits for coils and discrete inputs) and max_gap (the number of
// unused registers, or bits, a merged read may span between two tags). The planner is greedy
// over tags sorted by address, which is optimal for these rules (tested against a brute force
// search). When a device answers "illegal data address" to a merged read, the driver reads that
// read's tags one by one, isolates the tags the device refuses into reads of their own, plans the
// rest again around them and keeps that plan: one bad tag costs its own read, and only it goes
// bad.
//
// # Faults
//
// Each TCP endpoint (host:port) and each serial port is owned by one goroutine that serialises
// every request to the devices behind it. After any error that is not a Modbus exception
// (timeout, CRC, garbage, broken connection) the connection or port is closed and opened again
// for the next request; connection failures back the endpoint off with jitter. A timeout ends the
// device's poll cycle, so a silent device costs the others on its endpoint at most one timeout
// per cycle; after two failed cycles in a row the device is reported down (Sink.DeviceState) and
// quarantined, polled only at a growing, jittered interval until it answers again. Every poll
// cycle delivers one batch with a sample per tag (bad quality and a typed null where there is no
// value); a device coming up delivers its samples before Sink.DeviceState(name, true, nil), so
// that a DBIRTH can carry current values. A device that is down delivers no samples.
//
// On a serial bus the driver uses its own transporter under goburrow's RTU packager: the read
// timeout is made of short slices so each device keeps its own timeout, there is no idle timer,
// frames are delimited by their expected length, and after a failed exchange the port is closed
// and, on reopening, drained until the line is silent; bytes that cannot start the expected reply
// (a late reply from a slow slave) are skipped.
//
// # Writes
//
// Writable tags (coils and holding registers only) are range checked against the type and the
// tag's min/max, encoded with the tag's type, byte order and scale, written (function 5 for a
// coil, 6 for one register, 16 for several, read-modify-write with 3 and 6 for a bit in a
// register) and read back; Write returns the value read back for the caller to publish.
//
// # Configuration
//
// The package registers two drivers with the configuration, modbus-tcp and modbus-rtu
// (configuration.go): it owns their keys of a [[device]] and a [[device.tag]] table, their
// defaults and their validation, which reports each problem at its key's line. The rules are
// the ones New applies to Options (device.go, tag.go), so the driver can also be built and
// tested in code without the configuration; Close stops a running driver.
package modbus
