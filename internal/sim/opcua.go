package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/server/attrs"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

// OPCUANamespace is the namespace URI of a simulated OPC UA server's variables: tag j is the
// node "nsu=OPCUANamespace;s=" + TagName(j).
const OPCUANamespace = "urn:wellgate:simulate"

// TagName is the name of a simulated device's tag j, and the identifier of its OPC UA node.
func TagName(j int) string { return fmt.Sprintf("T%04d", j) }

// OPCUAServer is a simulated OPC UA server (gopcua, security None, anonymous): Int16
// variables T0000… in namespace OPCUANamespace, initial value j, writable.
type OPCUAServer struct {
	srv      *server.Server
	endpoint string
	cancel   context.CancelFunc
	ids      []*ua.NodeID
	index    map[string]int // node id (String) → tag

	mu      sync.Mutex
	val     []int16
	changed []time.Time // source timestamps
	order   []uint16    // changeOrder
	next    int
	batch   []int // the tags changed by the current change, notified outside mu
}

// StartOPCUA serves a simulated OPC UA server with tags variables on host:port (0: a free
// port); seed picks the order in which its variables change.
func StartOPCUA(host string, port, tags int, seed uint64) (*OPCUAServer, error) {
	for attempt := 0; ; attempt++ {
		p := port
		if port == 0 {
			addr, err := resolvePort(net.JoinHostPort(host, "0"))
			if err != nil {
				return nil, err
			}
			_, ps, _ := net.SplitHostPort(addr)
			p, _ = strconv.Atoi(ps)
		}
		s, err := startOPCUA(host, p, tags, seed)
		if err == nil {
			return s, nil
		}
		if port != 0 || attempt == 3 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
	}
}

func startOPCUA(host string, port, tags int, seed uint64) (*OPCUAServer, error) {
	now := time.Now()
	s := &OPCUAServer{endpoint: "opc.tcp://" + net.JoinHostPort(host, strconv.Itoa(port)),
		index: make(map[string]int, tags), val: make([]int16, tags), changed: make([]time.Time, tags),
		order: changeOrder(tags, seed)}
	s.srv = server.New(
		server.EndPoint(host, port),
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
	)
	// Registered before Start, these take the place of gopcua's: its Write replaces a node's
	// value function unsynchronised, and its GetEndpoints answers only the URL dialled.
	s.srv.RegisterHandler(id.WriteRequest_Encoding_DefaultBinary, s.write)
	s.srv.RegisterHandler(id.GetEndpointsRequest_Encoding_DefaultBinary, s.getEndpoints)
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.srv.Start(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("sim: opc ua server on %s: %w", s.endpoint, err)
	}
	s.cancel = cancel
	ns := server.NewNodeNameSpace(s.srv, OPCUANamespace)
	root, _ := s.srv.Namespace(0)
	root.Objects().AddRef(ns.Objects(), id.HasComponent, true)
	access := byte(ua.AccessLevelTypeCurrentRead | ua.AccessLevelTypeCurrentWrite)
	for j := range tags {
		s.val[j], s.changed[j] = int16(j), now
		nid := ua.NewStringNodeID(ns.ID(), TagName(j))
		s.ids = append(s.ids, nid)
		s.index[nid.String()] = j
		n := server.NewNode(nid, map[ua.AttributeID]*ua.DataValue{
			ua.AttributeIDNodeClass:       server.DataValueFromValue(uint32(ua.NodeClassVariable)),
			ua.AttributeIDBrowseName:      server.DataValueFromValue(attrs.BrowseName(TagName(j))),
			ua.AttributeIDDataType:        server.DataValueFromValue(ua.NewNumericExpandedNodeID(0, uint32(ua.TypeIDInt16))),
			ua.AttributeIDAccessLevel:     server.DataValueFromValue(access),
			ua.AttributeIDUserAccessLevel: server.DataValueFromValue(access),
		}, nil, func() *ua.DataValue { return s.value(j) })
		ns.AddNode(n)
		ns.Objects().AddRef(n, id.HasComponent, true)
	}
	return s, nil
}

// Endpoint is the server's opc.tcp:// URL.
func (s *OPCUAServer) Endpoint() string { return s.endpoint }

// Close stops the server.
func (s *OPCUAServer) Close() {
	s.cancel()
	_ = s.srv.Close()
}

func (s *OPCUAServer) value(j int) *ua.DataValue {
	s.mu.Lock()
	v, at := s.val[j], s.changed[j]
	s.mu.Unlock()
	return &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
		Value: ua.MustVariant(v), SourceTimestamp: at, ServerTimestamp: time.Now()}
}

// change increments (wrapping) the next n variables of the server's order and notifies their
// monitored items. It is called from one goroutine only (the fleet's), which owns batch.
func (s *OPCUAServer) change(n int) {
	now := time.Now()
	s.mu.Lock()
	s.batch = s.batch[:0]
	for range n {
		j := int(s.order[s.next])
		s.val[j]++
		s.changed[j] = now
		s.batch = append(s.batch, j)
		if s.next++; s.next == len(s.order) {
			s.next = 0
		}
	}
	s.mu.Unlock()
	for _, j := range s.batch {
		s.srv.ChangeNotification(s.ids[j])
	}
}

// write sets the values of the server's variables (Int16 only) and notifies their items.
func (s *OPCUAServer) write(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.WriteRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	status := make([]ua.StatusCode, len(req.NodesToWrite))
	var changed []int
	now := time.Now()
	s.mu.Lock()
	for i, w := range req.NodesToWrite {
		j, known := s.index[w.NodeID.String()]
		switch {
		case !known:
			status[i] = ua.StatusBadNodeIDUnknown
		case w.AttributeID != ua.AttributeIDValue:
			status[i] = ua.StatusBadNotWritable
		case w.Value == nil || w.Value.Value == nil || w.Value.Value.Type() != ua.TypeIDInt16:
			status[i] = ua.StatusBadTypeMismatch
		default:
			s.val[j], s.changed[j] = w.Value.Value.Value().(int16), now
			changed = append(changed, j)
		}
	}
	s.mu.Unlock()
	for _, j := range changed {
		s.srv.ChangeNotification(s.ids[j])
	}
	return &ua.WriteResponse{ResponseHeader: responseHeader(req.RequestHeader), Results: status,
		DiagnosticInfos: []*ua.DiagnosticInfo{}}, nil
}

// getEndpoints returns every endpoint whatever URL the client used, as most servers do.
func (s *OPCUAServer) getEndpoints(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.GetEndpointsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	return &ua.GetEndpointsResponse{ResponseHeader: responseHeader(req.RequestHeader), Endpoints: s.srv.Endpoints()}, nil
}

func responseHeader(req *ua.RequestHeader) *ua.ResponseHeader {
	return &ua.ResponseHeader{Timestamp: time.Now(), RequestHandle: req.RequestHandle, ServiceResult: ua.StatusOK,
		ServiceDiagnostics: &ua.DiagnosticInfo{}, StringTable: []string{}, AdditionalHeader: ua.NewExtensionObject(nil)}
}
