package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/wellgate/wellgate/internal/netaddr"
)

// Options configure the broker. The zero value of every limit means its default (see the
// Default… constants); New applies them, so that a caller sets only what its configuration
// names.
type Options struct {
	// Listen is the plain TCP address to serve MQTT on, e.g. "127.0.0.1:1883" (":0" picks a
	// port). Empty: no plain TCP listener.
	Listen string
	// TLSListen serves MQTT over TLS with the certificate in TLSCertFile and its key in
	// TLSKeyFile (PEM). With TLSClientCAFile every client must present a certificate signed by
	// a CA in that file; without it no client certificate is asked for.
	TLSListen       string
	TLSCertFile     string
	TLSKeyFile      string
	TLSClientCAFile string
	// WSListen serves MQTT over WebSocket (any path, subprotocol "mqtt"), for HMI panels.
	WSListen string

	// DataDir, when set, holds persistent sessions and retained messages (DataDir/broker).
	// Empty: in memory only.
	DataDir string
	Logger  *slog.Logger

	// AllowAnonymous lets clients connect without a user name. nil means AnonymousDefault:
	// allowed only when every listener is on loopback and there are no Users.
	AllowAnonymous *bool
	// Anonymous is what anonymous clients may read and write. When both lists are empty and
	// AnonymousFullAccess holds (loopback only, no users), they may read and write everything
	// except the gateway's own edge node namespace, as before users existed.
	Anonymous Access
	// Users may connect with a user name and password and get their own read and write lists.
	Users []User

	// EdgeNode is the gateway's own Sparkplug edge node. Nobody but the gateway (the in-process
	// client) may publish births, data or deaths under it; its NCMD and DCMD topics are
	// commands, audited with who sent them. Empty: no namespace is protected.
	EdgeNode EdgeNode

	// MaxClients bounds the connected clients; one more is refused with CONNACK "server
	// unavailable". Open sockets (including those still in TLS or before CONNECT) are bounded
	// by MaxClients + MaxPending.
	MaxClients int
	// MaxPacketSize is the largest MQTT packet (fixed header included) a client may send, in
	// bytes. A larger one is refused on its fixed header, before its body is read, and the
	// client is dropped.
	MaxPacketSize int
	// MaxQueued bounds the QoS 1/2 messages in flight or queued for one session (mochi's own
	// bound). MaxQueuedBytes bounds an away session's queue in bytes (payloads, topics and a
	// fixed overhead), MaxQueuedTotalBytes the messages in flight for all sessions together:
	// past either, new messages for an away session are dropped and counted (a connected
	// client is bounded by MaxQueued and MaxPacketSize).
	MaxQueued           int
	MaxQueuedBytes      int64
	MaxQueuedTotalBytes int64
	// SessionExpiry bounds how long a disconnected persistent session is kept. MQTT 3.1.1 has
	// no expiry of its own and mochi would keep such sessions forever.
	SessionExpiry time.Duration
	// MaxRetained bounds the retained messages in count, MaxRetainedSize the payload of one,
	// MaxRetainedBytes all of them together (payloads and topics). A retained publish past a
	// bound is delivered but not retained (and clears the topic's older retained message, so
	// that nobody later gets a stale value).
	MaxRetained      int
	MaxRetainedSize  int
	MaxRetainedBytes int64
	// ConnectTimeout is how long a new connection may take to complete TLS and send CONNECT.
	ConnectTimeout time.Duration

	// Test hooks. storeFS replaces the session store's file system (to inject failures);
	// storeRetry is the first delay between attempts to reopen a failed store; storeTimeout
	// bounds a publisher's wait for one store write; listenFn replaces net.Listen.
	storeFS      storeFS
	storeRetry   time.Duration
	storeTimeout time.Duration
	listenFn     func(addr string) (net.Listener, error)
}

// Defaults for the limits in Options.
const (
	DefaultMaxClients          = 100
	DefaultMaxPending          = 32 // sockets before CONNECT, on top of MaxClients
	DefaultMaxPacketSize       = 256 << 10
	DefaultMaxQueued           = 10_000
	DefaultMaxQueuedBytes      = 16 << 20
	DefaultMaxQueuedTotalBytes = 64 << 20
	DefaultSessionExpiry       = 7 * 24 * time.Hour
	DefaultMaxRetained         = 10_000
	DefaultMaxRetainedSize     = 64 << 10
	DefaultMaxRetainedBytes    = 16 << 20
	DefaultConnectTimeout      = 10 * time.Second
)

// maxQueuedLimit is the most messages one session can have in flight: MQTT packet ids are 16 bits.
const maxQueuedLimit = 65_535

// User is a user that connects with a name and a bcrypt password hash (see HashPassword).
type User struct {
	Name         string
	PasswordHash string
	Access
}

// Access is what a client may do: Read lists the topic filters it may subscribe to (and so
// receive from), Write the topic filters it may publish to. MQTT wildcards + and # apply;
// a subscription is allowed only when a Read filter covers all of it.
type Access struct {
	Read  []string
	Write []string
}

// EdgeNode names the gateway's own Sparkplug edge node (spBv1.0/<Group>/…/<Node>).
type EdgeNode struct {
	Group string
	Node  string
}

// withDefaults returns o with every unset limit at its default.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	setDefault(&o.MaxClients, DefaultMaxClients)
	setDefault(&o.MaxPacketSize, DefaultMaxPacketSize)
	setDefault(&o.MaxQueued, DefaultMaxQueued)
	setDefault(&o.MaxQueuedBytes, DefaultMaxQueuedBytes)
	setDefault(&o.MaxQueuedTotalBytes, DefaultMaxQueuedTotalBytes)
	setDefault(&o.SessionExpiry, DefaultSessionExpiry)
	setDefault(&o.MaxRetained, DefaultMaxRetained)
	setDefault(&o.MaxRetainedSize, DefaultMaxRetainedSize)
	setDefault(&o.MaxRetainedBytes, DefaultMaxRetainedBytes)
	setDefault(&o.ConnectTimeout, DefaultConnectTimeout)
	setDefault(&o.storeRetry, time.Second)
	setDefault(&o.storeTimeout, 5*time.Second)
	return o
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// listenAddrs are the configured listener addresses.
func (o Options) listenAddrs() []string {
	var out []string
	for _, a := range []string{o.Listen, o.TLSListen, o.WSListen} {
		if a != "" {
			out = append(out, a)
		}
	}
	return out
}

// AnonymousDefault is the value AllowAnonymous takes when it is nil: true only when every
// listener is on loopback and there are no users. The config layer can show it in `check`.
func (o Options) AnonymousDefault() bool {
	return len(o.Users) == 0 && AllLoopback(o.listenAddrs()...)
}

// anonymousAllowed is AllowAnonymous with its default applied.
func (o Options) anonymousAllowed() bool {
	if o.AllowAnonymous != nil {
		return *o.AllowAnonymous
	}
	return o.AnonymousDefault()
}

// AnonymousFullAccess reports whether anonymous clients may read and write everything (but
// the gateway's own namespace): they are allowed, every listener is on loopback, there are no
// users and no anonymous read or write list narrows it. This is the demo and local-tools case.
func (o Options) AnonymousFullAccess() bool {
	return o.anonymousAllowed() && o.AnonymousDefault() &&
		len(o.Anonymous.Read) == 0 && len(o.Anonymous.Write) == 0
}

// AllLoopback reports whether every address listens on loopback only ("127.0.0.1:1883",
// "[::1]:1883", "localhost:1883"). ":1883" and "0.0.0.0:1883" listen on every interface.
func AllLoopback(addrs ...string) bool {
	for _, a := range addrs {
		if !netaddr.Loopback(a) {
			return false
		}
	}
	return true
}

// Warnings lists what `check` should warn about: a listener off loopback on which anonymous
// clients may write.
func (o Options) Warnings() []string {
	if !o.anonymousAllowed() {
		return nil
	}
	var open []string
	for _, a := range o.listenAddrs() {
		if !netaddr.Loopback(a) {
			open = append(open, a)
		}
	}
	if len(open) == 0 {
		return nil
	}
	var w []string
	if len(o.Anonymous.Write) > 0 {
		w = append(w, fmt.Sprintf("anonymous clients may publish to %s on %s, which is not loopback: anyone on that network can write",
			strings.Join(o.Anonymous.Write, ", "), strings.Join(open, ", ")))
	}
	for _, f := range o.Anonymous.Write {
		if commandFilter(f) {
			w = append(w, fmt.Sprintf("anonymous write filter %q covers Sparkplug commands (NCMD/DCMD): anyone on %s can change device values",
				f, strings.Join(open, ", ")))
		}
	}
	return w
}

// commandFilter reports whether filter can match some NCMD or DCMD topic (STATE is not a
// group: Sparkplug 3.0 reserves it for host application state).
func commandFilter(filter string) bool {
	if covers("spBv1.0/STATE/#", filter) {
		return false
	}
	return FiltersOverlap(filter, "spBv1.0/+/NCMD/#") || FiltersOverlap(filter, "spBv1.0/+/DCMD/#")
}

// Validate checks the options without touching files or the network: addresses, TLS file
// pairs, user names and hashes, topic filters and limits. Its errors name the field.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, l := range []struct{ name, addr string }{{"listen", o.Listen}, {"tls_listen", o.TLSListen}, {"ws_listen", o.WSListen}} {
		if l.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			bad("%s %q: not host:port", l.name, l.addr)
		}
	}
	if len(o.listenAddrs()) == 0 {
		bad("no listener: set listen, tls_listen or ws_listen")
	}
	if o.TLSListen != "" && (o.TLSCertFile == "" || o.TLSKeyFile == "") {
		bad("tls_listen needs tls_cert_file and tls_key_file")
	}
	if o.TLSListen == "" && (o.TLSCertFile != "" || o.TLSKeyFile != "" || o.TLSClientCAFile != "") {
		bad("tls_cert_file, tls_key_file and tls_client_ca_file need tls_listen")
	}
	seen := map[string]bool{}
	for i, u := range o.Users {
		switch {
		case u.Name == "":
			bad("user %d: empty name", i+1)
		case seen[u.Name]:
			bad("user %q: defined twice", u.Name)
		}
		seen[u.Name] = true
		if err := checkHash(u.PasswordHash); err != nil {
			bad("user %q: password_hash: %w", u.Name, err)
		}
		errs = append(errs, checkFilters("user "+u.Name, u.Access)...)
	}
	errs = append(errs, checkFilters("anonymous", o.Anonymous)...)
	if (o.EdgeNode.Group == "") != (o.EdgeNode.Node == "") {
		bad("edge node: set both group and node id, or neither")
	}
	for _, l := range []struct {
		name string
		v    int64
	}{{"max_clients", int64(o.MaxClients)}, {"max_packet_size", int64(o.MaxPacketSize)}, {"max_queued", int64(o.MaxQueued)},
		{"max_queued_bytes", o.MaxQueuedBytes}, {"max_queued_total_bytes", o.MaxQueuedTotalBytes},
		{"max_retained", int64(o.MaxRetained)}, {"max_retained_size", int64(o.MaxRetainedSize)},
		{"max_retained_bytes", o.MaxRetainedBytes}, {"session_expiry", int64(o.SessionExpiry)},
		{"connect_timeout", int64(o.ConnectTimeout)}} {
		if l.v < 0 {
			bad("%s: negative", l.name)
		}
	}
	if o.MaxQueued > maxQueuedLimit {
		bad("max_queued: at most %d (MQTT packet ids are 16 bits)", maxQueuedLimit)
	}
	if o.MaxPacketSize > 256<<20 {
		bad("max_packet_size: at most 256 MiB (the MQTT limit)")
	}
	if o.SessionExpiry > 0 && o.SessionExpiry < time.Second {
		bad("session_expiry: at least 1s")
	}
	return errors.Join(errs...)
}

func checkFilters(who string, a Access) []error {
	var errs []error
	for _, l := range []struct {
		kind    string
		filters []string
	}{{"read", a.Read}, {"write", a.Write}} {
		for _, f := range l.filters {
			if !ValidFilter(f) {
				errs = append(errs, fmt.Errorf("%s: %s filter %q is not a valid MQTT topic filter", who, l.kind, f))
			}
		}
	}
	return errs
}
