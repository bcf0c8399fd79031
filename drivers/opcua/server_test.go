package opcua

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/server/attrs"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"

	"github.com/wellgate/wellgate/internal/peers"
)

// testServer is gopcua's server in process (security None, anonymous) with a namespace of
// variables whose values the test sets. Its Read, Write, CreateMonitoredItems and
// DeleteSubscriptions services are the test's own: they enforce the operation limits the
// test gives (gopcua's enforce none), record the size of every request, refuse writes of the
// wrong type (gopcua's store anything) and delete subscriptions synchronously (gopcua's do it
// in a goroutine, which lets a new subscription take the id of one being deleted).
type testServer struct {
	srv  *server.Server
	url  string
	addr string
	ns   *server.NodeNameSpace
	stop context.CancelFunc

	mu        sync.Mutex
	vars      map[string]*testVar // by node id
	readSizes []int               // nodes per Read request
	itemSizes []int               // items per CreateMonitoredItems request
	writes    []*ua.WriteValue
	limits    serverLimits
	failReads map[string]bool // node ids whose Value read fails the whole Read with BadInternalError
}

// serverLimits are the operation limits a test server states and enforces (0: none).
type serverLimits struct {
	read, monitoredPerCall int
	// hidden limits are enforced but not stated, as by servers whose capabilities lie.
	hiddenRead int
}

type testVar struct {
	id       *ua.NodeID
	typ      ua.TypeID
	writable bool
	dv       *ua.DataValue
}

// startServer starts a test server on a free loopback port, closed when the test ends.
func startServer(t testing.TB, lim serverLimits) *testServer {
	t.Helper()
	ts := startServerAt(t, peers.FreePort(t), lim)
	t.Cleanup(ts.close)
	return ts
}

var (
	sharedOnce   sync.Once
	sharedServer *testServer
)

// shared returns a server without limits that the package's tests share (gopcua's server
// takes seconds to start under the race detector); each test adds variables of its own.
// TestMain closes it.
func shared(t testing.TB) *testServer {
	t.Helper()
	sharedOnce.Do(func() { sharedServer = startServerAt(t, peers.FreePort(t), serverLimits{}) })
	return sharedServer
}

// startServerAt starts a test server on addr (host:port); the caller closes it.
func startServerAt(t testing.TB, addr string, lim serverLimits) *testServer {
	t.Helper()
	ts, err := newTestServer(addr, lim)
	if err != nil {
		t.Fatalf("start OPC UA server: %v", err)
	}
	return ts
}

// newTestServer starts a test server on addr.
func newTestServer(addr string, lim serverLimits) (*testServer, error) {
	host, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	ts := &testServer{addr: addr, url: "opc.tcp://" + addr, vars: map[string]*testVar{}, limits: lim}
	ts.srv = server.New(
		server.EndPoint(host, port),
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
	)
	// Registered before Start, these take the place of gopcua's handlers.
	ts.srv.RegisterHandler(id.ReadRequest_Encoding_DefaultBinary, ts.read)
	ts.srv.RegisterHandler(id.WriteRequest_Encoding_DefaultBinary, ts.write)
	ts.srv.RegisterHandler(id.CreateMonitoredItemsRequest_Encoding_DefaultBinary, ts.createItems)
	ts.srv.RegisterHandler(id.DeleteSubscriptionsRequest_Encoding_DefaultBinary, ts.deleteSubscriptions)
	ts.srv.RegisterHandler(id.GetEndpointsRequest_Encoding_DefaultBinary, ts.getEndpoints)
	ctx, cancel := context.WithCancel(context.Background())
	ts.stop = cancel
	if err := ts.srv.Start(ctx); err != nil {
		cancel()
		return nil, err
	}
	ts.ns = server.NewNodeNameSpace(ts.srv, "urn:wellgate:test")
	root, _ := ts.srv.Namespace(0)
	root.Objects().AddRef(ts.ns.Objects(), id.HasComponent, true)
	ts.addLimit(id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead, func(l serverLimits) int { return l.read })
	ts.addLimit(id.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall, func(l serverLimits) int { return l.monitoredPerCall })
	return ts, nil
}

// close stops the server (after the test's drivers, which were started later and stop first).
func (ts *testServer) close() {
	ts.stop()
	ts.srv.Close()
}

// addLimit states an operation limit in namespace 0 (replacing gopcua's own MaxNodesPerRead).
func (ts *testServer) addLimit(node uint32, get func(serverLimits) int) {
	root, _ := ts.srv.Namespace(0)
	root.AddNode(server.NewNode(ua.NewNumericNodeID(0, node),
		map[ua.AttributeID]*ua.DataValue{
			ua.AttributeIDNodeClass:  server.DataValueFromValue(uint32(ua.NodeClassVariable)),
			ua.AttributeIDBrowseName: server.DataValueFromValue(attrs.BrowseName("limit")),
		}, nil, func() *ua.DataValue {
			ts.mu.Lock()
			defer ts.mu.Unlock()
			return server.DataValueFromValue(uint32(get(ts.limits)))
		}))
}

// add creates variable ns=<test>;s=name of built-in type typ with value v (a Go value of that
// type), under the namespace's Objects folder.
func (ts *testServer) add(name string, typ ua.TypeID, v any, writable bool) string {
	nid := ua.NewStringNodeID(ts.ns.ID(), name)
	access := byte(ua.AccessLevelTypeCurrentRead)
	if writable {
		access |= byte(ua.AccessLevelTypeCurrentWrite)
	}
	tv := &testVar{id: nid, typ: typ, writable: writable, dv: goodValue(v, time.Now())}
	ts.mu.Lock()
	ts.vars[nid.String()] = tv
	ts.mu.Unlock()
	n := server.NewNode(nid, map[ua.AttributeID]*ua.DataValue{
		ua.AttributeIDNodeClass:       server.DataValueFromValue(uint32(ua.NodeClassVariable)),
		ua.AttributeIDBrowseName:      server.DataValueFromValue(attrs.BrowseName(name)),
		ua.AttributeIDDataType:        server.DataValueFromValue(ua.NewNumericExpandedNodeID(0, uint32(typ))),
		ua.AttributeIDAccessLevel:     server.DataValueFromValue(access),
		ua.AttributeIDUserAccessLevel: server.DataValueFromValue(access),
	}, nil, func() *ua.DataValue { return ts.value(nid) })
	ts.ns.AddNode(n)
	ts.ns.Objects().AddRef(n, id.HasComponent, true)
	return "nsu=urn:wellgate:test;s=" + name
}

func goodValue(v any, source time.Time) *ua.DataValue {
	return &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
		Value: ua.MustVariant(v), SourceTimestamp: source, ServerTimestamp: time.Now()}
}

// value returns a copy of a variable's current DataValue.
func (ts *testServer) value(nid *ua.NodeID) *ua.DataValue {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	v := ts.vars[nid.String()]
	if v == nil {
		return &ua.DataValue{EncodingMask: ua.DataValueStatusCode, Status: ua.StatusBadNodeIDUnknown}
	}
	dv := *v.dv
	return &dv
}

// set gives a variable a new value (with a source timestamp) and notifies its monitored items.
func (ts *testServer) set(name string, v any, source time.Time) {
	ts.setDV(name, goodValue(v, source))
}

// setStatus gives a variable a value with a status code.
func (ts *testServer) setStatus(name string, v any, status ua.StatusCode) {
	dv := &ua.DataValue{EncodingMask: ua.DataValueStatusCode | ua.DataValueSourceTimestamp, Status: status, SourceTimestamp: time.Now()}
	if v != nil {
		dv.EncodingMask |= ua.DataValueValue
		dv.Value = ua.MustVariant(v)
	}
	ts.setDV(name, dv)
}

func (ts *testServer) setDV(name string, dv *ua.DataValue) {
	nid := ua.NewStringNodeID(ts.ns.ID(), name)
	ts.mu.Lock()
	ts.vars[nid.String()].dv = dv
	ts.mu.Unlock()
	ts.srv.ChangeNotification(nid)
}

// current returns a variable's current value.
func (ts *testServer) current(name string) any {
	return ts.value(ua.NewStringNodeID(ts.ns.ID(), name)).Value.Value()
}

func header(req *ua.RequestHeader, status ua.StatusCode) *ua.ResponseHeader {
	return &ua.ResponseHeader{Timestamp: time.Now(), RequestHandle: req.RequestHandle, ServiceResult: status,
		ServiceDiagnostics: &ua.DiagnosticInfo{}, StringTable: []string{}, AdditionalHeader: ua.NewExtensionObject(nil)}
}

// read serves Read as gopcua does, within the limits.
func (ts *testServer) read(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req := r.(*ua.ReadRequest)
	n := len(req.NodesToRead)
	ts.mu.Lock()
	ts.readSizes = append(ts.readSizes, n)
	lim := ts.limits
	ts.mu.Unlock()
	if (lim.read > 0 && n > lim.read) || (lim.hiddenRead > 0 && n > lim.hiddenRead) {
		return nil, ua.StatusBadTooManyOperations
	}
	ts.mu.Lock()
	for _, rv := range req.NodesToRead {
		if rv.AttributeID == ua.AttributeIDValue && ts.failReads[rv.NodeID.String()] {
			ts.mu.Unlock()
			return nil, ua.StatusBadInternalError
		}
	}
	ts.mu.Unlock()
	results := make([]*ua.DataValue, n)
	for i, rv := range req.NodesToRead {
		ns, err := ts.srv.Namespace(int(rv.NodeID.Namespace()))
		if err != nil {
			results[i] = &ua.DataValue{EncodingMask: ua.DataValueStatusCode, Status: ua.StatusBadNodeIDUnknown}
			continue
		}
		results[i] = ns.Attribute(rv.NodeID, rv.AttributeID)
	}
	return &ua.ReadResponse{ResponseHeader: header(req.RequestHeader, ua.StatusOK), Results: results,
		DiagnosticInfos: []*ua.DiagnosticInfo{}}, nil
}

// write stores values of the variable's own type only, in writable variables only.
func (ts *testServer) write(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req := r.(*ua.WriteRequest)
	status := make([]ua.StatusCode, len(req.NodesToWrite))
	var changed []*ua.NodeID
	ts.mu.Lock()
	for i, w := range req.NodesToWrite {
		ts.writes = append(ts.writes, w)
		v := ts.vars[w.NodeID.String()]
		switch {
		case v == nil:
			status[i] = ua.StatusBadNodeIDUnknown
		case !v.writable:
			status[i] = ua.StatusBadNotWritable
		case w.Value == nil || w.Value.Value == nil || w.Value.Value.Type() != v.typ:
			status[i] = ua.StatusBadTypeMismatch
		default:
			v.dv = goodValue(w.Value.Value.Value(), time.Now())
			changed = append(changed, v.id)
		}
	}
	ts.mu.Unlock()
	for _, nid := range changed {
		ts.srv.ChangeNotification(nid)
	}
	return &ua.WriteResponse{ResponseHeader: header(req.RequestHeader, ua.StatusOK), Results: status,
		DiagnosticInfos: []*ua.DiagnosticInfo{}}, nil
}

// createItems enforces MaxMonitoredItemsPerCall, then lets gopcua create the items.
func (ts *testServer) createItems(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req := r.(*ua.CreateMonitoredItemsRequest)
	ts.mu.Lock()
	ts.itemSizes = append(ts.itemSizes, len(req.ItemsToCreate))
	lim := ts.limits.monitoredPerCall
	ts.mu.Unlock()
	if lim > 0 && len(req.ItemsToCreate) > lim {
		return nil, ua.StatusBadTooManyOperations
	}
	return ts.srv.MonitoredItemService.CreateMonitoredItems(sc, r, reqID)
}

// deleteSubscriptions deletes the session's subscriptions at once.
func (ts *testServer) deleteSubscriptions(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req := r.(*ua.DeleteSubscriptionsRequest)
	sess := ts.srv.Session(req.RequestHeader)
	subs := ts.srv.SubscriptionService
	results := make([]ua.StatusCode, len(req.SubscriptionIDs))
	for i, sid := range req.SubscriptionIDs {
		subs.Mu.Lock()
		s := subs.Subs[sid]
		subs.Mu.Unlock()
		switch {
		case s == nil:
			results[i] = ua.StatusBadSubscriptionIDInvalid
		case sess == nil || s.Session.AuthTokenID.String() != sess.AuthTokenID.String():
			results[i] = ua.StatusBadSessionIDInvalid
		default:
			subs.DeleteSubscription(sid)
		}
	}
	return &ua.DeleteSubscriptionsResponse{ResponseHeader: header(req.RequestHeader, ua.StatusOK), Results: results,
		DiagnosticInfos: []*ua.DiagnosticInfo{}}, nil
}

// getEndpoints returns every endpoint whatever URL the client used, as most servers do
// (gopcua's returns only those whose URL is the one the client dialled, which a proxy changes).
func (ts *testServer) getEndpoints(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req := r.(*ua.GetEndpointsRequest)
	return &ua.GetEndpointsResponse{ResponseHeader: header(req.RequestHeader, ua.StatusOK), Endpoints: ts.srv.Endpoints()}, nil
}

// items returns the monitored items' create requests.
func (ts *testServer) items() []*ua.MonitoredItemCreateRequest {
	m := ts.srv.MonitoredItemService
	m.Mu.Lock()
	defer m.Mu.Unlock()
	var out []*ua.MonitoredItemCreateRequest
	for _, it := range m.Items {
		out = append(out, it.Req)
	}
	return out
}

// setLimits changes the limits stated and enforced from now on, and forgets the sizes seen.
func (ts *testServer) setLimits(l serverLimits) {
	ts.mu.Lock()
	ts.limits, ts.readSizes, ts.itemSizes = l, nil, nil
	ts.mu.Unlock()
}

func (ts *testServer) sizes() (reads, items []int) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]int(nil), ts.readSizes...), append([]int(nil), ts.itemSizes...)
}
