package opcua

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/logx"
)

// Session parameters.
const (
	sessionTimeout = 2 * time.Minute // what the server keeps an abandoned session for
	// subscriptionLifetime is what the server keeps a subscription without publish requests
	// for (at least three keep-alives).
	subscriptionLifetime = time.Minute
	// defaultBatch bounds a request's operations when the server states no limit.
	defaultBatch = 1000
	// shutdownBudget bounds each step of closing a session when the driver stops, so that Close
	// returns within closeTimeout whatever the device's timeout.
	shutdownBudget = 2 * time.Second
)

var (
	errLost       = errors.New("the client reported the connection lost")
	errRescan     = errors.New("scan rate changed")
	errSilent     = errors.New("the subscription is silent while the session answers")
	errNoEndpoint = errors.New("no matching endpoint")
)

// limits are the server's operation limits (0: none stated), read at connect.
type limits struct {
	read, write, browse, monitoredPerCall, monitoredPerSub int
}

// conn is one session to a server, owned by the device goroutine; writers use its client.
type conn struct {
	d      *device
	client *opcua.Client
	opts   []opcua.Option // how the client was made, for cleaning its session up later

	states   chan opcua.ConnState
	lost     chan struct{} // closed when the client reports the connection lost
	stop     chan struct{} // ends the state watcher
	stopOnce sync.Once

	lim limits

	// Written by the device goroutine (under mu once the session is published), read by
	// writers under mu.
	mu       sync.Mutex
	ids      []*ua.NodeID // by tag; nil for a tag refused in this session
	nodeType []ua.TypeID  // by tag: the node's built-in type; 0 until known

	// Subscriptions (owned by the device goroutine).
	subs    []uint32
	revised time.Duration // the longest publishing or sampling interval the server revised to
	notifs  chan *opcua.PublishNotificationData
	last    []lastSeen // by tag: what was delivered last, for the watchdog
	lastRx  time.Time  // when data last arrived
	lastOK  time.Time  // when a request last succeeded
	suspect time.Time  // when the watchdog first saw a change the subscription did not deliver
}

// orphan is a session left on a server whose connection broke; the next connect deletes its
// subscriptions and closes it, so that none is left behind.
type orphan struct {
	session *opcua.Session
	subs    []uint32
	opts    []opcua.Option
}

// connect opens a session: it picks the endpoint, checks the server's certificate, logs in,
// reads the operation limits and checks every tag's node.
func (d *device) connect(ctx context.Context, old *orphan) (*conn, error) {
	ep, err := d.endpoint(ctx)
	if err != nil {
		return nil, err
	}
	opts, err := d.clientOptions(ep)
	if err != nil {
		return nil, err
	}
	if old != nil {
		d.cleanup(ctx, old)
	}
	c := &conn{d: d, states: make(chan opcua.ConnState, 16), lost: make(chan struct{}), stop: make(chan struct{}),
		notifs: make(chan *opcua.PublishNotificationData, 64), opts: opts}
	c.client, err = opcua.NewClient(d.opts.Endpoint, append(opts, opcua.StateChangedCh(c.states))...)
	if err != nil {
		return nil, err
	}
	go c.watchState()
	cctx, cancel := context.WithTimeout(ctx, 2*d.opts.Timeout)
	err = c.client.Connect(cctx)
	cancel()
	if err != nil {
		c.close(d.opts.Timeout, false)
		return nil, fmt.Errorf("connecting: %w", err)
	}
	c.lastOK = d.drv.clock.Now()
	if err := c.readLimits(ctx); err != nil {
		c.close(d.opts.Timeout, true)
		return nil, fmt.Errorf("reading the operation limits: %w", err)
	}
	if err := c.checkTags(ctx); err != nil {
		c.close(d.opts.Timeout, true)
		return nil, fmt.Errorf("reading the tags' data types: %w", err)
	}
	return c, nil
}

// endpoint asks the server for its endpoints and picks the one the device is configured for;
// on a secured one the server's certificate must be pinned.
func (d *device) endpoint(ctx context.Context) (*ua.EndpointDescription, error) {
	ectx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	eps, err := opcua.GetEndpoints(ectx, d.opts.Endpoint, opcua.DialTimeout(d.opts.Timeout), opcua.RequestTimeout(d.opts.Timeout))
	if err != nil {
		return nil, fmt.Errorf("getting endpoints: %w", err)
	}
	ep, err := pickEndpoint(eps, d.opts.Endpoint, d.policy, d.mode)
	if err != nil {
		return nil, err
	}
	if d.policy != ua.SecurityPolicyURINone {
		p, err := loadPins(d.opts.ServerFingerprint, d.opts.ServerCertificate)
		if err != nil {
			return nil, err
		}
		if !p.trusts(ep.ServerCertificate) {
			return nil, &UntrustedError{Fingerprint: Fingerprint(ep.ServerCertificate)}
		}
	}
	return ep, nil
}

// pickEndpoint returns the endpoint with the policy and mode.
func pickEndpoint(eps []*ua.EndpointDescription, url, policy string, mode ua.MessageSecurityMode) (*ua.EndpointDescription, error) {
	var offered []string
	for _, ep := range eps {
		if ep.SecurityPolicyURI == policy && ep.SecurityMode == mode {
			return ep, nil
		}
		offered = append(offered, policyName(ep.SecurityPolicyURI)+"/"+modeName(ep.SecurityMode))
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("%w: the server offers no endpoint for %s (some servers answer only to the URL they know themselves by)",
			errNoEndpoint, url)
	}
	return nil, fmt.Errorf("%w: the server offers no %s/%s endpoint (it offers %s)", errNoEndpoint,
		policyName(policy), modeName(mode), strings.Join(offered, ", "))
}

// clientOptions builds the device's client options for an endpoint, with its client
// certificate (created in the PKI directory on first use) when the endpoint or the user needs
// one.
func (d *device) clientOptions(ep *ua.EndpointDescription) ([]opcua.Option, error) {
	o := d.opts
	var client *identity
	if d.policy != ua.SecurityPolicyURINone || o.UserCertificate != "" {
		id, created, err := d.drv.ids.client(o.ClientCertificate, o.ClientKey, o.PKIDir)
		if err != nil {
			return nil, err
		}
		if created {
			d.log.Info("created the client certificate: trust it on the server", "pki", o.PKIDir,
				"fingerprint", Fingerprint(id.cert))
		}
		client = &id
	}
	return sessionOptions(ep, o.Timeout, "wellgate "+d.name, client,
		userAuth{o.Username, o.Password, o.UserCertificate, o.UserKey})
}

// userAuth is how a session's user authenticates: a name and password, a certificate and key
// (files), or neither (anonymous).
type userAuth struct{ username, password, certFile, keyFile string }

// sessionOptions builds a client's options for an endpoint. Order matters with gopcua: the
// user token must be set before SecurityFromEndpoint, which otherwise installs an anonymous
// token and makes a later AuthUsername a silent no-op.
func sessionOptions(ep *ua.EndpointDescription, timeout time.Duration, name string, client *identity, user userAuth) ([]opcua.Option, error) {
	opts := []opcua.Option{
		opcua.AutoReconnect(false), // the driver supervises and rebuilds the client itself
		opcua.DialTimeout(timeout), opcua.RequestTimeout(timeout),
		opcua.SessionTimeout(sessionTimeout),
		opcua.SessionName(name),
		opcua.ApplicationName("wellgate"),
		opcua.ApplicationURI(applicationURI()),
	}
	if client != nil {
		opts = append(opts, opcua.Certificate(client.cert), opcua.PrivateKey(client.key))
	}
	token := ua.UserTokenTypeAnonymous
	switch {
	case user.username != "":
		token = ua.UserTokenTypeUserName
		opts = append(opts, opcua.AuthUsername(user.username, user.password))
	case user.certFile != "":
		token = ua.UserTokenTypeCertificate
		cert, err := readCertificate(user.certFile)
		if err != nil {
			return nil, fmt.Errorf("user_certificate: %w", err)
		}
		key, err := readKey(user.keyFile)
		if err != nil {
			return nil, fmt.Errorf("user_key: %w", err)
		}
		opts = append(opts, opcua.AuthCertificate(cert), opcua.AuthPrivateKey(key))
	default:
		opts = append(opts, opcua.AuthAnonymous())
	}
	if !offersToken(ep, token) {
		return nil, fmt.Errorf("%w: the %s/%s endpoint does not accept %s users", errNoEndpoint,
			policyName(ep.SecurityPolicyURI), modeName(ep.SecurityMode), strings.TrimPrefix(token.String(), "UserTokenType"))
	}
	return append(opts, opcua.SecurityFromEndpoint(ep, token)), nil
}

func offersToken(ep *ua.EndpointDescription, t ua.UserTokenType) bool {
	for _, p := range ep.UserIdentityTokens {
		if p.TokenType == t {
			return true
		}
	}
	return false
}

// watchState follows the client's state channel and closes lost when a connected client
// reports Disconnected or Closed. It drains the channel until stop, so that the client never
// blocks on it.
func (c *conn) watchState() {
	connected, lost := false, false
	for {
		select {
		case s := <-c.states:
			if s == opcua.Connected {
				connected = true
			}
			if connected && !lost && (s == opcua.Disconnected || s == opcua.Closed) {
				lost = true
				close(c.lost)
			}
		case <-c.stop:
			return
		}
	}
}

// isLost reports whether the client has reported the connection lost.
func (c *conn) isLost() bool {
	select {
	case <-c.lost:
		return true
	default:
		return false
	}
}

// readLimits reads the server's operation limits; absent limits stay 0 (none stated), and
// then requests hold at most defaultBatch operations. MaxNodesPerRead is read alone first, so
// that reading the others respects it.
func (c *conn) readLimits(ctx context.Context) error {
	nodes := []uint32{
		id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
		id.Server_ServerCapabilities_OperationLimits_MaxNodesPerWrite,
		id.Server_ServerCapabilities_OperationLimits_MaxNodesPerBrowse,
		id.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
		id.Server_ServerCapabilities_MaxMonitoredItemsPerSubscription,
	}
	vals := make([]int, len(nodes))
	c.lim.read = 1
	for _, part := range [][2]int{{0, 1}, {1, len(nodes)}} {
		rvs := make([]*ua.ReadValueID, 0, len(nodes))
		for _, n := range nodes[part[0]:part[1]] {
			rvs = append(rvs, &ua.ReadValueID{NodeID: ua.NewNumericNodeID(0, n), AttributeID: ua.AttributeIDValue})
		}
		res, err := c.readIDs(ctx, rvs)
		if err != nil {
			return err
		}
		for k, dv := range res {
			if dv == nil || quality(dv.Status) != drivers.Good || dv.Value == nil {
				continue
			}
			if n, ok := numberOf(dv.Value.Value()); ok && n.float() > 0 && n.float() < 1<<31 {
				vals[part[0]+k] = int(n.float())
			}
		}
		c.lim.read = vals[0]
		if c.lim.read == 0 {
			c.lim.read = defaultBatch
		}
	}
	c.lim = limits{read: vals[0], write: vals[1], browse: vals[2], monitoredPerCall: vals[3], monitoredPerSub: vals[4]}
	c.d.log.Debug("operation limits", "max_nodes_per_read", c.lim.read, "max_nodes_per_write", c.lim.write,
		"max_monitored_items_per_call", c.lim.monitoredPerCall, "max_monitored_items_per_subscription", c.lim.monitoredPerSub)
	for _, p := range []*int{&c.lim.read, &c.lim.write, &c.lim.browse, &c.lim.monitoredPerCall} {
		if *p == 0 {
			*p = defaultBatch
		}
	}
	return nil
}

// close ends the session within budget: politely when alive (closing the session on the
// server), else it just drops the connection.
func (c *conn) close(budget time.Duration, alive bool) {
	cctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	if !alive {
		_, _ = c.client.DetachSession(cctx)
	}
	_ = c.client.Close(cctx)
	c.stopOnce.Do(func() { close(c.stop) })
}

// disconnect closes a session after serve returned err. When the session is still alive its
// subscriptions are deleted and it is closed; when the connection is broken the session is
// detached and returned, to be cleaned up through the next connection.
func (d *device) disconnect(c *conn, err error) *orphan {
	alive := !c.isLost() && (errors.Is(err, errRescan) || errors.Is(err, errSilent) || errors.Is(err, context.Canceled))
	budget := d.opts.Timeout
	if errors.Is(err, context.Canceled) { // stopping: polite, but quick
		budget = min(budget, shutdownBudget)
	}
	if alive && len(c.subs) > 0 {
		dctx, cancel := context.WithTimeout(context.Background(), budget)
		if derr := c.deleteSubscriptions(dctx, c.subs); derr != nil {
			alive = false
		}
		cancel()
	}
	if alive {
		c.close(budget, true)
		return nil
	}
	s := c.client.Session()
	c.close(budget, false)
	if s == nil {
		return nil
	}
	return &orphan{session: s, subs: c.subs, opts: c.opts}
}

// cleanup deletes an orphaned session's subscriptions and closes it, through a connection of
// its own, so that a session the server kept across a network cut does not leave its
// subscriptions behind. It is best effort: a server that dropped the session already answers
// BadSessionIdInvalid, which is fine.
func (d *device) cleanup(ctx context.Context, o *orphan) {
	cctx, cancel := context.WithTimeout(ctx, 2*d.opts.Timeout)
	defer cancel()
	c, err := opcua.NewClient(d.opts.Endpoint, o.opts...)
	if err != nil {
		return
	}
	if err := c.Dial(cctx); err != nil {
		return
	}
	defer c.Close(cctx)
	if err := c.ActivateSession(cctx, o.session); err != nil {
		d.log.Debug("the old session is gone", "err", logx.Err(err))
		return
	}
	if len(o.subs) > 0 {
		if err := deleteSubscriptions(cctx, c, o.subs); err != nil {
			d.log.Debug("deleting the old session's subscriptions", "err", logx.Err(err))
		}
	}
	if err := c.CloseSession(cctx); err != nil {
		d.log.Debug("closing the old session", "err", logx.Err(err))
		return
	}
	d.log.Debug("closed the session left by the broken connection", "subscriptions", len(o.subs))
}

// deleteSubscriptions deletes subscriptions on the server.
func deleteSubscriptions(ctx context.Context, c *opcua.Client, ids []uint32) error {
	req := &ua.DeleteSubscriptionsRequest{SubscriptionIDs: ids}
	return c.Send(ctx, req, func(v ua.Response) error {
		if _, ok := v.(*ua.DeleteSubscriptionsResponse); !ok {
			return fmt.Errorf("unexpected response %T", v)
		}
		return nil
	})
}

// deleteSubscriptions deletes this session's subscriptions on the server.
func (c *conn) deleteSubscriptions(ctx context.Context, ids []uint32) error {
	return deleteSubscriptions(ctx, c.client, ids)
}
