// Package modbus is wellgate's Modbus driver: Modbus TCP (several unit ids sharing one connection
// per endpoint) and Modbus RTU over serial lines (several slaves per bus). Serial ports are
// opened and read with github.com/goburrow/serial; the driver builds, frames and checks the
// Modbus frames itself (pdu.go, frame.go, transport*.go), because goburrow/modbus's client
// cannot tell an exception from a reply with another function code, cannot skip a stale
// reply, and cannot be interrupted in a read.
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
// Some devices document their registers off by one: "register 40100" in the manual is
// protocol address 100. For them the device's zero_based = true makes the five- and six-digit
// forms count from 0 ("40000" is offset 0, "40100" offset 100, "400000" … "465535"); the
// prefixed forms are protocol addresses either way. Plans and messages write a zero-based
// device's addresses the same way.
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
// bad. When every tag reads on its own, the refused address lies in a hole the read spanned:
// the driver reads the holes, halving a refused range until single addresses remain, and
// only the addresses refused are kept out of merged reads; holes the device accepts are still
// spanned (TestSplitIsolatesRefusedRegister).
//
// # Faults
//
// Each TCP endpoint (host:port) and each serial port is owned by one goroutine that serialises
// every request to the devices behind it. A request ends in one of these ways, each counted
// by its kind in drivers.DeviceStatus.ErrorsByKind:
//
//	the answer           the data, decoded into the tags
//	exception            the device refused the request: the tags read stay bad, the device
//	                     is up ("exception")
//	no answer            "timeout"; "connection" when the connection or port failed
//	a wrong answer       a protocol error: "wrong_function" (another function code; an
//	                     exception reply only counts as one to the request's own function),
//	                     "wrong_length" (a byte count or size that does not fit the request),
//	                     "wrong_unit" (TCP: another unit id), "wrong_echo" (a write's reply
//	                     that echoes another address, value or quantity), "crc" (RTU) and
//	                     "garbage" (bytes that make no frame). The raw frame is in the debug log.
//
// Errors name the request: `illegal data address reading hr:49000 (1 register) for tag
// "Bogus/Out Of Range"`, `wrong function in reply (4 read input registers, want 3) reading
// hr:0-1 (2 registers) for tag "Flow"`, `illegal function writing co:4 (1 coil, function 5)
// for tag "Dump Valve"`: the status page shows the last one as the device's last error.
//
// Each device polls once at once when the driver starts, then on its poll_schedule
// (drivers.Schedule): "clock", the default, at whole multiples of its poll interval since the
// Unix epoch (a 1 s device at every whole second, a 1 m device at every whole minute); "start",
// every interval after its first poll. Devices on one endpoint each keep their own schedule and
// take turns on the line. A poll that ends after its next start was due skips to the one after
// (no catch-up burst) and counts "poll_overrun". Node Control/Scan Rate (SetScanRate) moves
// every device to the next start of the new interval's schedule.
//
// Anything but an exception ends the device's poll cycle, so a silent or broken device costs
// the others on its endpoint at most one timeout per cycle; after two failed cycles in a row
// the device is reported down (Sink.DeviceState, with the error) and quarantined. A quarantined
// device is probed at a growing, jittered interval, from its poll interval up to max_backoff
// (default 10 s; never less than the poll interval), so that its timeouts cost its neighbours
// little. When no other device on its line is answering there is nobody to protect: it is
// probed at its poll rate. And a line that shows life again (the first device on it to answer
// after all were down, or a TCP connection made again) has every quarantined device on it
// probed at once. So a device whose line comes back is polled again within one poll interval
// (plus the timeout of a probe in flight) when its whole line was down, and within max_backoff
// when only its own drop was. Failed connects and port opens are retried with jitter at most
// one poll interval (and max_backoff) apart. Every poll cycle delivers one batch with a sample
// per tag (bad quality and a typed null where there is no value); a device coming up delivers
// its samples before Sink.DeviceState(name, true, nil), so that a DBIRTH can carry current
// values. A device that is down delivers no samples.
//
// Modbus TCP replies are matched to requests by transaction id: a reply with an older id (it
// came after its request timed out) is discarded and counted as "late_reply". After an error
// other than an exception the connection is closed and dialled again for the next request.
//
// On a serial bus the driver keeps the line's discipline. Before every request, and after
// every failed exchange, it drains the input until the line has been silent for the silent
// interval (3.5 characters computed from the baud and framing — start, data, parity and stop
// bits — or 1.75 ms above 19200 baud; inter_frame_delay when longer) plus turnaround_delay:
// what arrived belonged to no request in flight. It then reads the reply until it is complete
// or the device's timeout passes, finding frames by their structure and CRC rather than by
// timing (the kernel's buffer keeps no gaps, and USB adapters deliver in bursts): a candidate
// with a wrong CRC was a false start, and the reader slides past it; a frame-shaped run inside
// a reply still arriving waits for that reply rather than cutting it. A frame that does not answer the request — another unit id,
// another function, a byte count that does not fit, a write's echo of another address or value
// — is discarded, counted as "late_reply" on the device whose unit id it carries (and logged,
// the first one as a warning), and never decoded as the answer; if nothing better arrives
// before the timeout, a frame from the device itself that did not fit is the request's
// protocol error. A slave that answers after its timeout thus costs its neighbours nothing
// (TestLateSlaveCostsNeighbourNothing). What RTU cannot do is tell a late reply from the answer
// when the late reply arrives after the next request to the same device and has the same
// function and byte count; the drain before every request makes that need a device that
// answers later than its timeout plus the time until its next request.
//
// Stopping (Close, or the context of Run ending, as on SIGTERM) interrupts a request in flight:
// a TCP connection is closed under its read, and a serial read waits at most one slice (the
// silent interval, within 1…10 ms) before it looks at the context; the port itself is never
// closed from another goroutine (goburrow's port keeps its descriptor in a plain field).
//
// # Writes
//
// Writable tags (coils and holding registers only) are range checked against the type and the
// tag's min/max, encoded with the tag's type, byte order and scale, written and read back;
// Write returns the value read back for the caller to publish. A coil is written with function
// 5, or 15 with one coil for a device with write_coil = "fc15"; one register with function 6,
// or 16 with one register for a device with write_single_register = "fc16"; several registers
// with 16; a bit in a register by reading the register (function 3) and writing it back as one
// register. A device that refuses the function answers "illegal function", which the write's
// error names with the function (TestWriteFunctionOptions).
//
// # Configuration
//
// The package registers two drivers with the configuration, modbus-tcp and modbus-rtu
// (configuration.go): it owns their keys of a [[device]] and a [[device.tag]] table, their
// defaults and their validation, which reports each problem at its key's line. The rules are
// the ones New applies to Options (device.go, tag.go), so the driver can also be built and
// tested in code without the configuration; Close stops a running driver. Beyond the line and
// the planning limits, a device has zero_based, write_single_register, write_coil and
// max_backoff, and an RTU device inter_frame_delay and turnaround_delay, which every device on
// one port must agree on, like the line's baud, data bits, parity and stop bits.
package modbus
