package gateway_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/server/attrs"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/internal/sphost"
	"github.com/wellgate/wellgate/sparkplug"
)

// uaServer is gopcua's OPC UA server in process (the smallest part of drivers/opcua's test
// server: variables whose values the test sets, and a Write service that keeps the variable's
// type and takes the server's lock, where gopcua's stores anything without one). Its variables
// outlive the server: stop and start serve the same values on the same address, as a skid
// whose server restarts.
type uaServer struct {
	t      testing.TB
	addr   string
	secure *uaIdentity // nil: security None only

	mu     sync.Mutex
	vars   map[string]*uaVar // by name (the node's string id)
	order  []string
	writes []string // names written, in order
	srv    *server.Server
	ns     *server.NodeNameSpace
	cancel context.CancelFunc
}

type uaVar struct {
	typ      ua.TypeID
	writable bool
	dv       *ua.DataValue
}

// uaIdentity is a server certificate and its key.
type uaIdentity struct {
	der []byte
	key *rsa.PrivateKey
}

// uaNamespace is the test namespace's URI: tags name nodes with nsu=, whatever index the
// namespace gets.
const uaNamespace = "urn:wellgate:gateway-test"

func newUAServer(t testing.TB, addr string, secure *uaIdentity) *uaServer {
	return &uaServer{t: t, addr: addr, secure: secure, vars: map[string]*uaVar{}}
}

// add declares variable name of built-in type typ with value v (a Go value of that type) and
// returns its node id for a tag map. Call it before start.
func (s *uaServer) add(name string, typ ua.TypeID, v any, writable bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vars[name] = &uaVar{typ: typ, writable: writable, dv: uaGood(v, time.Now())}
	s.order = append(s.order, name)
	return "nsu=" + uaNamespace + ";s=" + name
}

func uaGood(v any, source time.Time) *ua.DataValue {
	return &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
		Value: ua.MustVariant(v), SourceTimestamp: source, ServerTimestamp: time.Now()}
}

// start serves the variables on the server's address; stop ends it (and its connections).
func (s *uaServer) start() {
	s.t.Helper()
	host, portText, _ := net.SplitHostPort(s.addr)
	port, _ := strconv.Atoi(portText)
	opts := []server.Option{server.EndPoint(host, port), server.EnableAuthMode(ua.UserTokenTypeAnonymous)}
	if s.secure != nil {
		opts = append(opts, server.EnableSecurity("Basic256Sha256", ua.MessageSecurityModeSignAndEncrypt),
			server.Certificate(s.secure.der), server.PrivateKey(s.secure.key))
	} else {
		opts = append(opts, server.EnableSecurity("None", ua.MessageSecurityModeNone))
	}
	srv := server.New(opts...)
	srv.RegisterHandler(id.WriteRequest_Encoding_DefaultBinary, s.write)
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		cancel()
		s.t.Fatalf("start the OPC UA server: %v", err)
	}
	ns := server.NewNodeNameSpace(srv, uaNamespace)
	root, _ := srv.Namespace(0)
	root.Objects().AddRef(ns.Objects(), id.HasComponent, true)
	s.mu.Lock()
	s.srv, s.ns, s.cancel = srv, ns, cancel
	names := append([]string(nil), s.order...)
	s.mu.Unlock()
	for _, name := range names {
		s.addNode(ns, name)
	}
}

func (s *uaServer) addNode(ns *server.NodeNameSpace, name string) {
	s.mu.Lock()
	v := s.vars[name]
	s.mu.Unlock()
	nid := ua.NewStringNodeID(ns.ID(), name)
	access := byte(ua.AccessLevelTypeCurrentRead)
	if v.writable {
		access |= byte(ua.AccessLevelTypeCurrentWrite)
	}
	n := server.NewNode(nid, map[ua.AttributeID]*ua.DataValue{
		ua.AttributeIDNodeClass:       server.DataValueFromValue(uint32(ua.NodeClassVariable)),
		ua.AttributeIDBrowseName:      server.DataValueFromValue(attrs.BrowseName(name)),
		ua.AttributeIDDataType:        server.DataValueFromValue(ua.NewNumericExpandedNodeID(0, uint32(v.typ))),
		ua.AttributeIDAccessLevel:     server.DataValueFromValue(access),
		ua.AttributeIDUserAccessLevel: server.DataValueFromValue(access),
	}, nil, func() *ua.DataValue { return s.value(name) })
	ns.AddNode(n)
	ns.Objects().AddRef(n, id.HasComponent, true)
}

func (s *uaServer) stop() {
	s.mu.Lock()
	srv, cancel := s.srv, s.cancel
	s.srv, s.ns, s.cancel = nil, nil, nil
	s.mu.Unlock()
	if srv != nil {
		cancel()
		_ = srv.Close()
	}
}

// value returns a copy of a variable's DataValue.
func (s *uaServer) value(name string) *ua.DataValue {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vars[name]
	if v == nil {
		return &ua.DataValue{EncodingMask: ua.DataValueStatusCode, Status: ua.StatusBadNodeIDUnknown}
	}
	dv := *v.dv
	return &dv
}

// set gives a variable a new value with a source timestamp and notifies its monitored items
// (when the server runs).
func (s *uaServer) set(name string, v any, source time.Time) {
	s.mu.Lock()
	s.vars[name].dv = uaGood(v, source)
	srv, ns := s.srv, s.ns
	s.mu.Unlock()
	if srv != nil {
		srv.ChangeNotification(ua.NewStringNodeID(ns.ID(), name))
	}
}

// current returns a variable's value and the names written so far.
func (s *uaServer) current(name string) (any, []string) {
	v := s.value(name).Value.Value()
	s.mu.Lock()
	defer s.mu.Unlock()
	return v, append([]string(nil), s.writes...)
}

// write stores values of the variable's own type in writable variables only.
func (s *uaServer) write(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req := r.(*ua.WriteRequest)
	status := make([]ua.StatusCode, len(req.NodesToWrite))
	var changed []*ua.NodeID
	s.mu.Lock()
	for i, w := range req.NodesToWrite {
		name := w.NodeID.StringID()
		v := s.vars[name]
		switch {
		case v == nil || w.AttributeID != ua.AttributeIDValue:
			status[i] = ua.StatusBadNodeIDUnknown
		case !v.writable:
			status[i] = ua.StatusBadNotWritable
		case w.Value == nil || w.Value.Value == nil || w.Value.Value.Type() != v.typ:
			status[i] = ua.StatusBadTypeMismatch
		default:
			v.dv = uaGood(w.Value.Value.Value(), time.Now())
			s.writes = append(s.writes, name)
			changed = append(changed, w.NodeID)
		}
	}
	srv := s.srv
	s.mu.Unlock()
	for _, nid := range changed {
		srv.ChangeNotification(nid)
	}
	hdr := &ua.ResponseHeader{Timestamp: time.Now(), RequestHandle: req.RequestHeader.RequestHandle, ServiceResult: ua.StatusOK,
		ServiceDiagnostics: &ua.DiagnosticInfo{}, StringTable: []string{}, AdditionalHeader: ua.NewExtensionObject(nil)}
	return &ua.WriteResponse{ResponseHeader: hdr, Results: status, DiagnosticInfos: []*ua.DiagnosticInfo{}}, nil
}

// waitUntil polls cond (gateway state that no message announces) until it holds or d passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// uaCase is one OPC UA built-in type through the whole chain: the node's values, the tag's
// type key, and the Sparkplug datatype and value Ignition must see.
type uaCase struct {
	name   string
	typ    ua.TypeID
	v, v2  any
	tagTyp string
	dt     sparkplug.DataType
	want   drivers.Value
}

var uaSource = time.Date(2024, 3, 4, 5, 6, 7, 8_000_000, time.UTC)

func uaCases() []uaCase {
	return []uaCase{
		{"Boolean", ua.TypeIDBoolean, true, false, "Boolean", sparkplug.TypeBoolean, drivers.BoolValue(true)},
		{"SByte", ua.TypeIDSByte, int8(-100), int8(5), "Int8", sparkplug.TypeInt8, drivers.IntValue(drivers.Int8, -100)},
		{"Byte", ua.TypeIDByte, uint8(200), uint8(1), "UInt8", sparkplug.TypeUInt8, drivers.UintValue(drivers.UInt8, 200)},
		{"Int16", ua.TypeIDInt16, int16(-30000), int16(2), "Int16", sparkplug.TypeInt16, drivers.IntValue(drivers.Int16, -30000)},
		{"UInt16", ua.TypeIDUint16, uint16(60000), uint16(3), "UInt16", sparkplug.TypeUInt16, drivers.UintValue(drivers.UInt16, 60000)},
		{"Int32", ua.TypeIDInt32, int32(-2_000_000_000), int32(4), "Int32", sparkplug.TypeInt32, drivers.IntValue(drivers.Int32, -2_000_000_000)},
		{"UInt32", ua.TypeIDUint32, uint32(4_000_000_000), uint32(5), "UInt32", sparkplug.TypeUInt32, drivers.UintValue(drivers.UInt32, 4_000_000_000)},
		{"Int64", ua.TypeIDInt64, int64(math.MinInt64), int64(6), "Int64", sparkplug.TypeInt64, drivers.IntValue(drivers.Int64, math.MinInt64)},
		{"UInt64", ua.TypeIDUint64, uint64(math.MaxUint64), uint64(7), "UInt64", sparkplug.TypeUInt64, drivers.UintValue(drivers.UInt64, math.MaxUint64)},
		{"Float", ua.TypeIDFloat, float32(1.5), float32(8), "Float", sparkplug.TypeFloat, drivers.FloatValue(1.5)},
		{"Double", ua.TypeIDDouble, 2.25, 9.0, "Double", sparkplug.TypeDouble, drivers.DoubleValue(2.25)},
		{"String", ua.TypeIDString, "höhe", "x", "String", sparkplug.TypeString, drivers.StringValue("höhe")},
		{"DateTime", ua.TypeIDDateTime, uaSource, uaSource.Add(time.Hour), "DateTime", sparkplug.TypeDateTime, drivers.DateTimeValue(uaSource)},
		{"ByteString", ua.TypeIDByteString, []byte{0, 1, 255}, []byte{9}, "Bytes", sparkplug.TypeBytes, drivers.BytesValue([]byte{0, 1, 255})},
	}
}

// driverValue decodes a metric as the type its datatype stands for.
func driverValue(m sphost.Metric, t drivers.Type) (drivers.Value, bool) {
	v, err := m.DriverValue(t)
	return v, err == nil && !m.IsNull
}

// metricIs reports whether m is a message of device carrying metric name with value want.
func metricIs(host *sphost.Host, m sphost.Message, typ sparkplug.MessageType, device, name string, want drivers.Value) bool {
	if m.Topic.Type != typ || m.Topic.Device != device {
		return false
	}
	for _, mm := range host.Metrics(m) {
		if mm.Resolved == name {
			v, ok := driverValue(mm, want.Type())
			return ok && v.Equal(want)
		}
	}
	return false
}

func dcmdDouble(name string, v float64) []byte {
	p := sparkplug.Payload{Timestamp: uint64(time.Now().UnixMilli()), HasTimestamp: true}
	p.Metrics = append(p.Metrics, sparkplug.Metric{Name: name, Datatype: sparkplug.TypeDouble,
		Value: sparkplug.WireValue{Kind: sparkplug.KindDouble, Bits: math.Float64bits(v)}})
	return p.Marshal()
}

// chainConfig is a gateway with an OPC UA skid (every built-in type, a writable setpoint) and a
// Modbus RTU.
func chainConfig(t *testing.T, endpoint, plcAddr string, cases []uaCase, nodes map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	src := fmt.Sprintf(`
[gateway]
data_dir = %q
[sparkplug]
group_id = "Chain"
edge_node_id = "Pad"
[broker]
listen = "127.0.0.1:0"
[web]
enabled = false

[[device]]
name = "RTU"
driver = "modbus-tcp"
address = %q
poll_interval = "100ms"
timeout = "500ms"
  [[device.tag]]
  name = "Tank/Level"
  address = "40001"
  type = "uint16"
  [[device.tag]]
  name = "Pump/Run"
  address = "00001"
  type = "bool"

[[device]]
name = "Skid"
driver = "opcua"
endpoint = %q
mode = "subscribe"
poll_interval = "100ms"
timeout = "2s"
  [[device.tag]]
  name = "Setpoint"
  node_id = %q
  type = "Double"
  writable = true
  min = 0
  max = 100
`, dir, plcAddr, endpoint, nodes["Setpoint"])
	for _, c := range cases {
		src += fmt.Sprintf("  [[device.tag]]\n  name = %q\n  node_id = %q\n  type = %q\n", "T/"+c.name, nodes[c.name], c.tagTyp)
	}
	return writeTOML(t, dir, src)
}

// TestOPCUAAndModbusThroughTheGateway is the whole chain with both drivers in one gateway, as
// the Sparkplug host sees it: births carry both devices' metrics with the tightest datatypes
// and the servers' values; a change on each device arrives in DDATA (the OPC UA one with its
// source timestamp); a DCMD to the writable OPC UA tag reaches the server as the node's own type
// and its read-back is published, while one to a read-only tag never reaches it; the OPC UA
// server stopping is a DDEATH of that device only (the Modbus device keeps publishing), and its
// return a DBIRTH with the current values; the stream breaks no rule of docs/sparkplug.md.
func TestOPCUAAndModbusThroughTheGateway(t *testing.T) {
	p := &plc{}
	p.Set(func(p *plc) { p.Holding[0], p.Coils[0] = 120, true })
	plcAddr := startPLC(t, p)

	ts := newUAServer(t, freeAddr(t), nil)
	cases := uaCases()
	nodes := map[string]string{"Setpoint": ts.add("Setpoint", ua.TypeIDDouble, 10.0, true)}
	for _, c := range cases {
		nodes[c.name] = ts.add("T."+c.name, c.typ, c.v, false)
	}
	ts.start()
	t.Cleanup(ts.stop) // after the gateway's stop, registered later

	r := startGatewayN(t, chainConfig(t, "opc.tcp://"+ts.addr, plcAddr, cases, nodes))
	t.Cleanup(r.stop)
	host := sphost.Connect(t, "tcp://"+r.BrokerAddr())
	// Both devices up before the rebirth, so that its births carry both (Expect.Devices).
	waitUntil(t, 60*time.Second, "both devices up", func() bool {
		up := 0
		for _, d := range r.Snapshot().Devices {
			if d.State == "communicating" {
				up++
			}
		}
		return up == 2
	})
	from := len(host.Messages())
	host.Rebirth("Chain", "Pad")
	_, i := host.WaitFrom(from, 10*time.Second, "NBIRTH", isType(sparkplug.NBIRTH, ""))
	skidBirth, _ := host.WaitFrom(i, 10*time.Second, "DBIRTH Skid", isType(sparkplug.DBIRTH, "Skid"))
	rtuBirth, _ := host.WaitFrom(i, 10*time.Second, "DBIRTH RTU", isType(sparkplug.DBIRTH, "RTU"))

	born := map[string]sphost.Metric{}
	for _, m := range host.Metrics(skidBirth) {
		born[m.Resolved] = m
	}
	checkBorn := func(name string, dt sparkplug.DataType, want drivers.Value) {
		t.Helper()
		m, ok := born[name]
		if !ok {
			t.Errorf("DBIRTH Skid lacks %q", name)
			return
		}
		if m.Datatype != dt {
			t.Errorf("%s: datatype %d, want %d", name, m.Datatype, dt)
		}
		if v, ok := driverValue(m, want.Type()); !ok || !v.Equal(want) {
			t.Errorf("%s: born with %+v (null %v), want %v", name, m.Value, m.IsNull, want)
		}
	}
	checkBorn("Setpoint", sparkplug.TypeDouble, drivers.DoubleValue(10))
	for _, c := range cases {
		checkBorn("T/"+c.name, c.dt, c.want)
	}
	if len(born) != len(cases)+1 {
		t.Errorf("DBIRTH Skid has %d metrics, want %d", len(born), len(cases)+1)
	}
	for _, m := range host.Metrics(rtuBirth) {
		switch m.Resolved {
		case "Tank/Level":
			if m.Datatype != sparkplug.TypeUInt16 || m.Value.Bits != 120 {
				t.Errorf("RTU Tank/Level born as %d %+v", m.Datatype, m.Value)
			}
		case "Pump/Run":
			if m.Datatype != sparkplug.TypeBoolean || m.Value.Bits != 1 {
				t.Errorf("RTU Pump/Run born as %d %+v", m.Datatype, m.Value)
			}
		default:
			t.Errorf("DBIRTH RTU carries %q", m.Resolved)
		}
	}

	// A change on each device arrives in DDATA; the OPC UA value with its source timestamp.
	from = len(host.Messages())
	changed := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	for _, c := range cases {
		ts.set("T."+c.name, c.v2, changed)
	}
	p.Set(func(p *plc) { p.Holding[0] = 121 })
	for _, c := range cases {
		want := c.want
		switch c.tagTyp {
		case "Boolean":
			want = drivers.BoolValue(c.v2.(bool))
		case "String":
			want = drivers.StringValue(c.v2.(string))
		case "DateTime":
			want = drivers.DateTimeValue(c.v2.(time.Time))
		case "Bytes":
			want = drivers.BytesValue(c.v2.([]byte))
		case "Float":
			want = drivers.FloatValue(c.v2.(float32))
		case "Double":
			want = drivers.DoubleValue(c.v2.(float64))
		default:
			n, _ := strconv.ParseInt(fmt.Sprint(c.v2), 10, 64)
			if strings.HasPrefix(c.tagTyp, "U") {
				want = drivers.UintValue(c.want.Type(), uint64(n))
			} else {
				want = drivers.IntValue(c.want.Type(), n)
			}
		}
		m, _ := host.WaitFrom(from, 10*time.Second, "DDATA Skid T/"+c.name, func(m sphost.Message) bool {
			return metricIs(host, m, sparkplug.DDATA, "Skid", "T/"+c.name, want)
		})
		for _, mm := range host.Metrics(m) {
			if mm.Resolved == "T/"+c.name && (!mm.HasTimestamp || mm.Timestamp != uint64(changed.UnixMilli())) {
				t.Errorf("T/%s in DDATA stamped %d, want the source timestamp %d", c.name, mm.Timestamp, changed.UnixMilli())
			}
		}
	}
	host.WaitFrom(from, 10*time.Second, "DDATA RTU Tank/Level 121", func(m sphost.Message) bool {
		return metricIs(host, m, sparkplug.DDATA, "RTU", "Tank/Level", drivers.UintValue(drivers.UInt16, 121))
	})

	// DCMD: the read-only tag is refused before the server; the setpoint is written as a Double
	// and read back into DDATA.
	topic := sparkplug.DeviceTopic("Chain", sparkplug.DCMD, "Pad", "Skid")
	host.Publish(topic, 0, false, dcmdDouble("T/Double", 55))
	host.Publish(topic, 0, false, dcmdDouble("Setpoint", 101)) // above max
	from = len(host.Messages())
	host.Publish(topic, 0, false, dcmdDouble("Setpoint", 42.5))
	host.WaitFrom(from, 10*time.Second, "DDATA with the written setpoint", func(m sphost.Message) bool {
		return metricIs(host, m, sparkplug.DDATA, "Skid", "Setpoint", drivers.DoubleValue(42.5))
	})
	if v, writes := ts.current("Setpoint"); v != 42.5 || len(writes) != 1 || writes[0] != "Setpoint" {
		t.Errorf("server after the DCMDs: setpoint %v, writes %v; want 42.5 and one write of Setpoint", v, writes)
	}

	// The OPC UA server stops: DDEATH for Skid only; the RTU keeps publishing.
	from = len(host.Messages())
	ts.stop()
	_, i = host.WaitFrom(from, 30*time.Second, "DDEATH Skid", isType(sparkplug.DDEATH, "Skid"))
	p.Set(func(p *plc) { p.Holding[0] = 122 })
	host.WaitFrom(i, 10*time.Second, "DDATA RTU while Skid is dead", func(m sphost.Message) bool {
		return metricIs(host, m, sparkplug.DDATA, "RTU", "Tank/Level", drivers.UintValue(drivers.UInt16, 122))
	})

	// Back, with a value changed while it was away: DBIRTH with the current values.
	ts.set("T.Double", 11.0, time.Now())
	ts.start()
	birth, _ := host.WaitFrom(i, 30*time.Second, "DBIRTH Skid after the server's return", isType(sparkplug.DBIRTH, "Skid"))
	if !metricIs(host, birth, sparkplug.DBIRTH, "Skid", "T/Double", drivers.DoubleValue(11)) ||
		!metricIs(host, birth, sparkplug.DBIRTH, "Skid", "Setpoint", drivers.DoubleValue(42.5)) {
		t.Errorf("DBIRTH after the return lacks the current values: %+v", host.Metrics(birth))
	}
	for _, m := range host.Messages()[from:] {
		if m.Topic.Device == "RTU" && (m.Topic.Type == sparkplug.DDEATH || m.Topic.Type == sparkplug.DBIRTH) {
			t.Errorf("the RTU got a %s while only the OPC UA server stopped", m.Topic.Type)
		}
	}
	host.Verify(t, "Chain", "Pad", sphost.Expect{Aliases: true, Devices: []string{"RTU", "Skid"}})
}

// newUAIdentity makes a self-signed server certificate (as an OPC UA server makes its own).
func newUAIdentity(t *testing.T, host string) *uaIdentity {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	uri, _ := url.Parse("urn:wellgate:gateway-test:server")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "wellgate test server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment |
			x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, URIs: []*url.URL{uri}, IPAddresses: []net.IP{net.ParseIP(host)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &uaIdentity{der: der, key: key}
}

type apiDeviceErr struct {
	Name         string            `json:"name"`
	Driver       string            `json:"driver"`
	State        string            `json:"state"`
	ErrorsByKind map[string]uint64 `json:"errors_by_kind"`
	LastError    string            `json:"last_error"`
}

// TestOPCUAUnpinnedServerOnStatusPage: a secured OPC UA server whose certificate is not pinned
// is refused; /api/devices shows the device down with a security error whose last_error
// carries the certificate's fingerprint and the exact configuration line to add. Adding that
// line, verbatim, makes the device communicate.
func TestOPCUAUnpinnedServerOnStatusPage(t *testing.T) {
	addr := freeAddr(t)
	host, _, _ := net.SplitHostPort(addr)
	ident := newUAIdentity(t, host)
	sum := sha256.Sum256(ident.der)
	fingerprint := "SHA256:" + hex.EncodeToString(sum[:]) // computed here, not by the driver
	ts := newUAServer(t, addr, ident)
	node := ts.add("Level", ua.TypeIDDouble, 3.5, false)
	ts.start()
	t.Cleanup(ts.stop)

	dir := t.TempDir()
	device := fmt.Sprintf(`
[[device]]
name = "Secure Skid"
driver = "opcua"
endpoint = "opc.tcp://%s"
security_policy = "Basic256Sha256"
security_mode = "SignAndEncrypt"
poll_interval = "100ms"
timeout = "2s"
`, addr)
	tags := fmt.Sprintf(`
  [[device.tag]]
  name = "Level"
  node_id = %q
  type = "Double"
`, node)
	head := fmt.Sprintf(`
[gateway]
data_dir = %q
[sparkplug]
group_id = "API"
edge_node_id = "Secure"
[broker]
listen = "127.0.0.1:0"
[web]
listen = "127.0.0.1:0"
`, dir)
	r := startGatewayN(t, writeTOML(t, t.TempDir(), head+device+tags))
	t.Cleanup(r.stop)
	unpinnedOnPage(t, r, "Secure Skid", fingerprint)
}

// unpinnedOnPage waits until /api/devices shows device's last error, and checks that it is the
// refusal of a certificate that is not pinned: a security error, the device not communicating,
// and in last_error the line that pins fingerprint. It returns the line as the page shows it.
func unpinnedOnPage(t *testing.T, r *running, device, fingerprint string) string {
	t.Helper()
	var d apiDeviceErr
	waitUntil(t, 30*time.Second, device+"'s last error on /api/devices", func() bool {
		var ds []apiDeviceErr
		getJSON(t, "http://"+r.WebAddr()+"/api/devices", &ds)
		for _, x := range ds {
			if x.Name == device {
				d = x
			}
		}
		return d.LastError != ""
	})
	line := fmt.Sprintf("server_fingerprint = %q", fingerprint)
	if !strings.Contains(d.LastError, line) {
		t.Fatalf("last_error %q lacks the line to add: %s", d.LastError, line)
	}
	if d.Driver != "opcua" || d.State == "communicating" || d.ErrorsByKind["security"] == 0 {
		t.Errorf("unpinned device on /api/devices: %+v, want opcua, not communicating, a security error", d)
	}
	return regexp.MustCompile(`server_fingerprint = "[^"]*"`).FindString(d.LastError)
}

// secureNodeServer is a small node-opcua server (an independent stack with real security:
// gopcua v0.8.0's server cannot open a secured channel, gopcua #815): one Basic256Sha256
// SignAndEncrypt endpoint, user "field" with password "wellsite", variable s=Level (Double 3.5)
// in namespace urn:wellgate:gateway-secure. It prints its certificate's fingerprint when ready.
const secureNodeServer = `
import { createHash } from "node:crypto";
import { OPCUAServer } from "node-opcua-server";
import { OPCUACertificateManager } from "node-opcua-certificate-manager";
import { Variant, DataType } from "node-opcua-variant";
import { MessageSecurityMode } from "node-opcua-service-secure-channel";
import { SecurityPolicy } from "node-opcua-secure-channel";
const pki = process.env.PKI_DIR;
const manager = (dir) => new OPCUACertificateManager({ rootFolder: pki + dir, automaticallyAcceptUnknownCertificate: true });
const serverCertificateManager = manager("/server"), userCertificateManager = manager("/user");
await serverCertificateManager.initialize();
await userCertificateManager.initialize();
const server = new OPCUAServer({
    port: Number(process.env.PORT), host: "127.0.0.1",
    securityPolicies: [SecurityPolicy.Basic256Sha256], securityModes: [MessageSecurityMode.SignAndEncrypt],
    allowAnonymous: false, userManager: { isValidUser: (u, p) => u === "field" && p === "wellsite" },
    serverCertificateManager, userCertificateManager,
});
await server.initialize();
const space = server.engine.addressSpace;
const ns = space.registerNamespace("urn:wellgate:gateway-secure");
ns.addVariable({ organizedBy: space.rootFolder.objects, browseName: "Level", nodeId: "s=Level", dataType: "Double",
    value: new Variant({ dataType: DataType.Double, value: 3.5 }) });
await server.start();
console.log("ready SHA256:" + createHash("sha256").update(server.getCertificate()).digest("hex"));
`

// startSecureNodeServer runs secureNodeServer on addr until the test ends and returns the
// fingerprint it printed. It fails or skips the test when node-opcua is not installed.
func startSecureNodeServer(t *testing.T, addr string) string {
	t.Helper()
	nm := peers.NodeModules(t)
	if _, err := os.Stat(filepath.Join(nm, "node-opcua-server", "package.json")); err != nil {
		peers.Missing(t, "npm package node-opcua-server (in "+filepath.Dir(nm)+")")
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("node", "--input-type=module")
	cmd.Dir, cmd.Stdin = filepath.Dir(nm), strings.NewReader(secureNodeServer)
	cmd.Env = append(os.Environ(), "PORT="+port, "PKI_DIR="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGKILL); <-done })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if fp, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- fp
			}
		}
		close(ready)
	}()
	select {
	case fp, ok := <-ready:
		if !ok {
			<-done
			t.Fatalf("node-opcua server exited before it was ready:\n%s", stderr.String())
		}
		return fp
	case <-time.After(120 * time.Second):
		t.Fatalf("node-opcua server not ready within 120s")
	}
	return ""
}

// TestOPCUAPinnedFromStatusPage: against an independent server with real security, the line
// /api/devices prints for an unpinned certificate, pasted as it is into the device's table,
// is what it takes: the gateway then opens a Basic256Sha256 SignAndEncrypt session with a
// user and password, and the tag is good on the page.
func TestOPCUAPinnedFromStatusPage(t *testing.T) {
	addr := freeAddr(t)
	fingerprint := startSecureNodeServer(t, addr)
	dir := t.TempDir()
	head := fmt.Sprintf(`
[gateway]
data_dir = %q
[sparkplug]
group_id = "API"
edge_node_id = "Secure"
[broker]
listen = "127.0.0.1:0"
[web]
listen = "127.0.0.1:0"
[[device]]
name = "Node Skid"
driver = "opcua"
endpoint = "opc.tcp://%s"
security_policy = "Basic256Sha256"
security_mode = "SignAndEncrypt"
username = "field"
password = "wellsite"
poll_interval = "100ms"
timeout = "5s"
`, dir, addr)
	tags := `
  [[device.tag]]
  name = "Level"
  node_id = "nsu=urn:wellgate:gateway-secure;s=Level"
  type = "Double"
`
	r := startGatewayN(t, writeTOML(t, t.TempDir(), head+tags))
	t.Cleanup(r.stop)
	pasted := unpinnedOnPage(t, r, "Node Skid", fingerprint)
	r.stop()

	r2 := startGatewayN(t, writeTOML(t, t.TempDir(), head+pasted+"\n"+tags))
	t.Cleanup(r2.stop)
	base := "http://" + r2.WebAddr()
	waitUntil(t, 60*time.Second, "the pinned device communicating", func() bool {
		var ds []apiDeviceErr
		getJSON(t, base+"/api/devices", &ds)
		return len(ds) == 1 && ds[0].State == "communicating"
	})
	var tagsNow []apiTag
	getJSON(t, base+"/api/tags?device=Node%20Skid", &tagsNow)
	if len(tagsNow) != 1 || tagsNow[0].Quality != "good" || tagsNow[0].Value != 3.5 {
		t.Errorf("the pinned device's tag: %+v, want good 3.5", tagsNow)
	}
	if _, err := os.Stat(filepath.Join(dir, "pki", "client.key")); err != nil {
		t.Errorf("no client certificate in <data_dir>/pki: %v", err)
	}
}
