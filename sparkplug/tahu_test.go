package sparkplug

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// tahu runs testdata/tahu.js (Eclipse Tahu's sparkplug-payload under node) on a batch of
// requests and returns one result per request.
func tahu(t *testing.T, reqs []map[string]any) []map[string]any {
	t.Helper()
	node, modules := tahuPeer(t)
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, r := range reqs {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(node, filepath.Join("testdata", "tahu.js"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("tahu.js: %v\n%s", err, stderr.String())
	}
	var res []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(outb))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber() // 64-bit integers stay exact
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("tahu.js output %q: %v", sc.Text(), err)
		}
		if m["ok"] != true {
			t.Fatalf("tahu.js: %v", m["error"])
		}
		res = append(res, m)
	}
	if len(res) != len(reqs) {
		t.Fatalf("tahu.js answered %d of %d requests\n%s", len(res), len(reqs), stderr.String())
	}
	return res
}

// tahuPeer finds node and the sparkplug-payload package; it fails under CI or
// WELLGATE_REQUIRE_PEERS and skips otherwise.
func tahuPeer(t *testing.T) (node, modules string) {
	t.Helper()
	peers := os.Getenv("WELLGATE_PEERS")
	if peers == "" {
		peers = filepath.Join("..", ".peers")
	}
	modules, _ = filepath.Abs(filepath.Join(peers, "node_modules"))
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(modules, "sparkplug-payload", "package.json"))
	}
	if err != nil {
		msg := "Tahu interop peer missing (node or " + modules + "/sparkplug-payload): run `make test` or scripts/install-peers.sh: " + err.Error()
		if os.Getenv("CI") != "" || os.Getenv("WELLGATE_REQUIRE_PEERS") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node, modules
}

func decodeReq(raw []byte) map[string]any {
	return map[string]any{"op": "decode", "b64": base64.StdEncoding.EncodeToString(raw)}
}

// jsString renders a tahu.js result value for comparison: numbers exactly (integers as
// decimal, others through floatString), strings as they are (Longs, NaN, ±Inf, -0 included).
func jsString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		if _, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return string(x)
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
				return strconv.FormatInt(int64(f), 10)
			}
			return floatString(f)
		}
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	case map[string]any:
		if b, ok := x["$bytes"].(string); ok {
			return "bytes:" + b
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func floatString(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0 && math.Signbit(f):
		return "-0"
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// rawValue is what protobufjs shows for our wire value, in tahu.js's notation.
func rawValue(w WireValue) (field, value string) {
	switch w.Kind {
	case KindInt:
		return "intValue", strconv.FormatUint(w.Bits, 10)
	case KindLong:
		return "longValue", strconv.FormatUint(w.Bits, 10)
	case KindFloat:
		return "floatValue", floatString(float64(math.Float32frombits(uint32(w.Bits))))
	case KindDouble:
		return "doubleValue", floatString(math.Float64frombits(w.Bits))
	case KindBool:
		return "booleanValue", strconv.FormatBool(w.Bits != 0)
	case KindString:
		return "stringValue", w.Str
	case KindBytes:
		return "bytesValue", "bytes:" + base64.StdEncoding.EncodeToString(w.Bytes)
	}
	return "", ""
}

// tahuTyped is the value Tahu's decodePayload gives for a vector, in tahu.js's notation;
// ok is false where Tahu is known not to follow 3.0 (UInt32 read from long_value only).
func tahuTyped(v drivers.Value) (string, bool) {
	if v.IsNull() {
		return "null", true
	}
	switch t := v.Type(); {
	case t == drivers.UInt32:
		return "", false
	case t.IsSigned():
		return strconv.FormatInt(v.Int(), 10), true
	case t.IsUnsigned():
		return strconv.FormatUint(v.Uint(), 10), true
	case t.IsFloat():
		return floatString(v.Float64()), true
	case t == drivers.Boolean:
		return strconv.FormatBool(v.Bool()), true
	case t == drivers.Bytes:
		return "bytes:" + base64.StdEncoding.EncodeToString([]byte(v.Str())), true
	}
	return v.Str(), true
}

// tahuSession records every kind of message a session publishes: NBIRTH, DBIRTH (all
// vectors), DDATA with aliases, NDATA, historical DDATA, DDEATH and NDEATH.
func tahuSession(t *testing.T) []msg {
	c := &clock{t: t0}
	opts := Options{GroupID: "g", EdgeNodeID: "e", Aliases: true, Now: c.Now,
		NodeMetrics: []drivers.TagInfo{{Name: "Gateway/Uptime", Type: drivers.Int64, Units: "s", Description: "since start"}},
		Devices:     []drivers.DeviceInfo{{Name: "d", Tags: vectorTags()}}}
	s := newSession(t, opts)
	for i, v := range vectors {
		mustUpdate(t, s, sample("d", v.name, v.value, drivers.Good, t0.Add(time.Duration(i)*time.Millisecond)))
	}
	r := &recorder{}
	if err := s.Start(r, 17); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Second)
	mustUpdate(t, s, sample("d", "int8/neg", drivers.IntValue(drivers.Int8, -7), drivers.Stale, c.Now()),
		good("d", "uint64/max", drivers.UintValue(drivers.UInt64, 1<<40)), good("d", "null/string", drivers.StringValue("now set")),
		good("d", "string/empty", drivers.Null(drivers.String)), good("", "Gateway/Uptime", drivers.IntValue(drivers.Int64, -3)))
	if err := s.PublishHistorical([]drivers.Sample{sample("d", "double/e", drivers.DoubleValue(-1.5), drivers.Good, t0.Add(-time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeviceState("d", false); err != nil {
		t.Fatal(err)
	}
	if err := s.Death(); err != nil {
		t.Fatal(err)
	}
	return r.take()
}

func TestTahuDecodesSessionMessages(t *testing.T) {
	msgs := tahuSession(t)
	reqs := make([]map[string]any, len(msgs))
	for i, m := range msgs {
		reqs[i] = decodeReq(m.raw)
	}
	res := tahu(t, reqs)
	for i, m := range msgs {
		compareTahu(t, m, res[i])
	}
	// The DBIRTH against the shared vectors, through Tahu's typed decoding.
	dbirth := res[1]["payload"].(map[string]any)["metrics"].([]any)
	for i, v := range vectors {
		tm := dbirth[i].(map[string]any)
		if tm["name"] != v.name || tm["type"] != v.value.Type().String() {
			t.Errorf("Tahu DBIRTH metric %d: name %v type %v, want %s %s", i, tm["name"], tm["type"], v.name, v.value.Type())
		}
		if want, ok := tahuTyped(v.value); ok && jsString(tm["value"]) != want {
			t.Errorf("Tahu DBIRTH %s: value %v, want %s", v.name, jsString(tm["value"]), want)
		}
	}
}

// compareTahu checks Tahu's raw protobuf view of one message against our own encoding.
func compareTahu(t *testing.T, m msg, res map[string]any) {
	t.Helper()
	raw := res["raw"].(map[string]any)
	tp := res["payload"].(map[string]any)
	if got, want := jsString(raw["seq"]), strconv.FormatUint(m.p.Seq, 10); m.p.HasSeq != (raw["seq"] != nil) || (m.p.HasSeq && got != want) {
		t.Errorf("%s: Tahu seq %s, want %s (present %v) (%s, %s)", m.topic, got, want, m.p.HasSeq, ruleNBirthSeq0, ruleNoSeqNDeath)
	}
	if jsString(tp["timestamp"]) != strconv.FormatUint(m.p.Timestamp, 10) {
		t.Errorf("%s: Tahu timestamp %v", m.topic, tp["timestamp"])
	}
	rms, _ := raw["metrics"].([]any)
	if len(rms) != len(m.p.Metrics) {
		t.Fatalf("%s: Tahu sees %d metrics, want %d", m.topic, len(rms), len(m.p.Metrics))
	}
	for j, want := range m.p.Metrics {
		compareTahuMetric(t, m.topic, rms[j].(map[string]any), want)
	}
}

func compareTahuMetric(t *testing.T, topic string, rm map[string]any, want Metric) {
	t.Helper()
	id := topic + " metric " + want.Name + "#" + strconv.FormatUint(want.Alias, 10)
	str := func(k string) string { return jsString(rm[k]) }
	if want.Name != "" && str("name") != want.Name || want.Name == "" && rm["name"] != nil {
		t.Errorf("%s: Tahu name %s", id, str("name"))
	}
	if want.HasAlias != (rm["alias"] != nil) || (want.HasAlias && str("alias") != strconv.FormatUint(want.Alias, 10)) {
		t.Errorf("%s: Tahu alias %s", id, str("alias"))
	}
	if want.Datatype != 0 && str("datatype") != strconv.Itoa(int(want.Datatype)) || want.Datatype == 0 && rm["datatype"] != nil {
		t.Errorf("%s: Tahu datatype %s, want %d", id, str("datatype"), want.Datatype)
	}
	if str("timestamp") != strconv.FormatUint(want.Timestamp, 10) {
		t.Errorf("%s: Tahu timestamp %s, want %d", id, str("timestamp"), want.Timestamp)
	}
	if (rm["isHistorical"] == true) != want.IsHistorical || (rm["isNull"] == true) != want.IsNull {
		t.Errorf("%s: Tahu isHistorical %v isNull %v", id, rm["isHistorical"], rm["isNull"])
	}
	if field, v := rawValue(want.Value); field != "" && str(field) != v {
		t.Errorf("%s: Tahu %s = %s, want %s", id, field, str(field), v)
	}
	if want.IsNull {
		for _, f := range []string{"intValue", "longValue", "floatValue", "doubleValue", "booleanValue", "stringValue", "bytesValue"} {
			if rm[f] != nil {
				t.Errorf("%s: null metric has %s (%s)", id, f, ruleNull)
			}
		}
	}
	compareTahuProps(t, id, rm["properties"], want.Properties)
}

func compareTahuProps(t *testing.T, id string, got any, want *PropertySet) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Errorf("%s: Tahu sees properties %v", id, got)
		}
		return
	}
	ps, _ := got.(map[string]any)
	keys, _ := ps["keys"].([]any)
	vals, _ := ps["values"].([]any)
	if len(keys) != len(want.Keys) || len(vals) != len(want.Values) {
		t.Fatalf("%s: Tahu properties %v, want %v", id, got, want)
	}
	for i, k := range want.Keys {
		pv := vals[i].(map[string]any)
		field, v := rawValue(want.Values[i].Value)
		if jsString(keys[i]) != k || jsString(pv["type"]) != strconv.Itoa(int(want.Values[i].Type)) || jsString(pv[field]) != v {
			t.Errorf("%s: Tahu property %v = %v, want %s %+v (%s)", id, keys[i], pv, k, want.Values[i], ruleQuality)
		}
	}
}

func TestTahuEncodedCommands(t *testing.T) {
	c := &clock{t: t0}
	opts := testOptions(c)
	opts.Aliases = true
	opts.Devices[0].Tags = append(opts.Devices[0].Tags,
		drivers.TagInfo{Name: "Setpoint", Type: drivers.Double, Writable: true},
		drivers.TagInfo{Name: "Total", Type: drivers.Int64, Writable: true},
		drivers.TagInfo{Name: "Count", Type: drivers.UInt64, Writable: true},
		drivers.TagInfo{Name: "Enable", Type: drivers.Boolean, Writable: true},
		drivers.TagInfo{Name: "Recipe", Type: drivers.String, Writable: true},
		drivers.TagInfo{Name: "Blob", Type: drivers.Bytes, Writable: true},
		drivers.TagInfo{Name: "Small", Type: drivers.Int16, Writable: true},
	)
	s, r := started(t, opts, 4)
	metric := func(name, typ string, v any) map[string]any {
		return map[string]any{"name": name, "type": typ, "value": v}
	}
	payload := func(ms ...map[string]any) map[string]any {
		return map[string]any{"op": "encode", "payload": map[string]any{"timestamp": 1700000000000, "metrics": ms}}
	}
	byAlias := map[string]any{"alias": 5, "type": "Int8", "value": -5} // Mode: Uptime is 1, plc1 tags 2…
	res := tahu(t, []map[string]any{
		payload(metric(MetricRebirth, "Boolean", true)),
		payload(metric("Mode", "Int8", -5), metric("Flow", "Float", 2.5), metric("Setpoint", "Double", -0.125),
			metric("Total", "Int64", "-9223372036854775808"), metric("Count", "UInt64", "18446744073709551615"),
			metric("Enable", "Boolean", true), metric("Recipe", "String", "gas lift ☀"),
			metric("Blob", "Bytes", map[string]any{"$bytes": "AAH+/w=="}), metric("Small", "Int16", -300), byAlias),
		payload(metric("Level", "UInt32", 4000000000)), // Tahu puts UInt32 in long_value
		payload(metric("Nope", "Int8", 1), metric("Tubing/Pressure", "Double", 1), metric("Mode", "String", "x")),
	})
	bin := func(i int) []byte {
		b, err := base64.StdEncoding.DecodeString(res[i]["b64"].(string))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	c.Add(DefaultRebirthHoldoff) // past the hold-off after the births of started
	if _, err := s.HandleCommand("spBv1.0/wellsite/NCMD/gw1", bin(0)); err != nil {
		t.Fatalf("Tahu NCMD rebirth: %v", err)
	}
	if msgs := r.take(); len(msgs) != 3 || msgs[0].topic != "spBv1.0/wellsite/NBIRTH/gw1" || msgs[0].p.Seq != 0 {
		t.Fatalf("Tahu NCMD rebirth published %d messages (%s)", len(msgs), ruleRebirth)
	}

	writes, err := s.HandleCommand("spBv1.0/wellsite/DCMD/gw1/plc1", bin(1))
	if err != nil {
		t.Fatalf("Tahu DCMD: %v", err)
	}
	want := []Write{
		{"plc1", "Mode", drivers.IntValue(drivers.Int8, -5)},
		{"plc1", "Flow", drivers.FloatValue(2.5)},
		{"plc1", "Setpoint", drivers.DoubleValue(-0.125)},
		{"plc1", "Total", drivers.IntValue(drivers.Int64, math.MinInt64)},
		{"plc1", "Count", drivers.UintValue(drivers.UInt64, math.MaxUint64)},
		{"plc1", "Enable", drivers.BoolValue(true)},
		{"plc1", "Recipe", drivers.StringValue("gas lift ☀")},
		{"plc1", "Blob", drivers.BytesValue([]byte{0, 1, 0xFE, 0xFF})},
		{"plc1", "Small", drivers.IntValue(drivers.Int16, -300)},
		{"plc1", "Mode", drivers.IntValue(drivers.Int8, -5)},
	}
	checkWrites(t, writes, want)

	writes, err = s.HandleCommand("spBv1.0/wellsite/DCMD/gw1/rtu2", bin(2))
	if err != nil {
		t.Fatalf("Tahu DCMD UInt32 in long_value: %v", err)
	}
	checkWrites(t, writes, []Write{{"rtu2", "Level", drivers.UintValue(drivers.UInt32, 4000000000)}})

	writes, err = s.HandleCommand("spBv1.0/wellsite/DCMD/gw1/plc1", bin(3))
	if len(writes) != 0 || !errors.Is(err, ErrUnknownMetric) || !errors.Is(err, drivers.ErrNotWritable) || !errors.Is(err, ErrType) {
		t.Errorf("unknown, read-only and wrongly typed metrics: writes %v, err %v (%s)", writes, err, ruleBadCmd)
	}
	if n := len(r.take()); n != 0 {
		t.Errorf("commands published %d messages", n)
	}
}

func checkWrites(t *testing.T, got, want []Write) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("writes %v, want %v (%s)", got, want, ruleDCMD)
	}
	for i := range want {
		if got[i].Device != want[i].Device || got[i].Tag != want[i].Tag || !got[i].Value.Equal(want[i].Value) {
			t.Errorf("write %d: %s/%s=%v (%s), want %s/%s=%v (%s) (%s)", i, got[i].Device, got[i].Tag, got[i].Value, got[i].Value.Type(),
				want[i].Device, want[i].Tag, want[i].Value, want[i].Value.Type(), ruleDCMD)
		}
	}
}
