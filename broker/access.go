package broker

import (
	"bytes"
	"crypto/sha256"
	"log/slog"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/crypto/bcrypt"

	"github.com/wellgate/wellgate/internal/logx"
)

// access is the authentication and ACL hook: who may connect, subscribe and publish. It
// decides at CONNECT (user, password, client id, will topic) and on every subscribe, publish
// and delivery; the gateway's own in-process client is never checked (mochi skips it).
type access struct {
	mqtt.HookBase
	srv   *mqtt.Server
	log   *slog.Logger
	stats *counters
	lines *logx.Limiter // one line per denial kind, client and topic per interval
	flood *lineBudget   // and no more than so many denial lines a second in all
	audit *lineBudget   // every accepted command, up to so many lines a second

	users     map[string]*User
	anonymous bool // anonymous clients may connect
	anonFull  bool // …and read and write everything (loopback only, no users)
	anonACL   Access
	edge      EdgeNode

	// bcrypt costs ~50 ms a check: a few at a time, and a user whose last good password is
	// presented again is let in without one.
	subscribing sync.Map // *mqtt.Client → struct{} while mochi handles its SUBSCRIBE

	checks chan struct{}
	wait   time.Duration
	mu     sync.Mutex
	good   map[string][32]byte // user → sha256 of the password that last passed
}

func newAccess(o Options, srv *mqtt.Server, log *slog.Logger, stats *counters) *access {
	a := &access{srv: srv, log: log, stats: stats, lines: logx.NewLimiter(time.Minute), flood: newLineBudget(20), audit: newLineBudget(50),
		users: map[string]*User{}, anonymous: o.anonymousAllowed(), anonFull: o.AnonymousFullAccess(),
		anonACL: o.Anonymous, edge: o.EdgeNode, checks: make(chan struct{}, 2), wait: o.ConnectTimeout,
		good: map[string][32]byte{}}
	for i := range o.Users {
		a.users[o.Users[i].Name] = &o.Users[i]
	}
	return a
}

func (a *access) ID() string { return "wellgate-access" }

func (a *access) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish,
		mqtt.OnSubscribe, mqtt.OnSubscribed:
		return true
	}
	return false
}

// OnConnect authenticates the client and checks its client id and will. A refused client
// gets its CONNACK here and mochi closes the connection on the returned error.
func (a *access) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if c := trackedConnOf(cl.Net.Conn); c != nil {
		c.connected.Store(true)
	}
	refuse := func(reason, topic string, code packets.Code) error {
		a.deny(cl, topic, reason)
		_ = a.srv.SendConnack(cl, code, false, nil)
		return code
	}
	v5 := cl.Properties.ProtocolVersion >= 5
	if cl.ID == mqtt.InlineClientId {
		return refuse(ReasonClientID, "", packets.ErrClientIdentifierNotValid)
	}
	user := string(pk.Connect.Username)
	if user == "" {
		if !a.anonymous {
			return refuse(ReasonAnonymous, "", pick(v5, packets.ErrNotAuthorized, packets.ErrBadUsernameOrPassword))
		}
	} else if !a.authenticate(user, pk.Connect.Password) {
		return refuse(ReasonBadCredentials, "", pick(v5, packets.ErrBadUsernameOrPassword, packets.ErrMalformedUsername))
	}
	if pk.Connect.WillFlag {
		if reason := a.writeDenied(user, pk.Connect.WillTopic); reason != "" {
			return refuse(ReasonWill, pk.Connect.WillTopic, pick(v5, packets.ErrNotAuthorized, packets.ErrBadUsernameOrPassword))
		}
	}
	return nil
}

// pick chooses the MQTT 5 or the 3.1.1 CONNACK code (mochi maps v5 codes to 3.1.1 ones,
// and ErrBadUsernameOrPassword becomes 3.1.1's "not authorized", ErrMalformedUsername its
// "bad user name or password").
func pick(v5 bool, c5, c3 packets.Code) packets.Code {
	if v5 {
		return c5
	}
	return c3
}

// OnConnectAuthenticate lets in every client OnConnect let through.
func (a *access) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

// authenticate checks a user's password against its bcrypt hash.
func (a *access) authenticate(name string, pw []byte) bool {
	u, ok := a.users[name]
	if !ok {
		return false
	}
	sum := sha256.Sum256(pw)
	a.mu.Lock()
	prev, known := a.good[name]
	a.mu.Unlock()
	if known && bytes.Equal(prev[:], sum[:]) {
		return true
	}
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case a.checks <- struct{}{}:
	case <-t.C:
		return false
	}
	err := bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), pw)
	<-a.checks
	if err != nil {
		return false
	}
	a.mu.Lock()
	a.good[name] = sum
	a.mu.Unlock()
	return true
}

// rights returns what the client with user name user may do; ok is false for a user that is
// not (or no longer) configured, who may do nothing.
func (a *access) rights(user string) (acl Access, full, ok bool) {
	if user == "" {
		return a.anonACL, a.anonFull, a.anonymous
	}
	u, ok := a.users[user]
	if !ok {
		return Access{}, false, false
	}
	return u.Access, false, true
}

// anonymousWrites reports whether anonymous clients may publish anything.
func (a *access) anonymousWrites() bool {
	return a.anonymous && (a.anonFull || len(a.anonACL.Write) > 0)
}

// writeDenied returns why user may not publish to topic, or "".
func (a *access) writeDenied(user, topic string) string {
	kind := a.edge.kind(topic)
	if kind == topicOwn {
		return ReasonNamespace
	}
	acl, full, ok := a.rights(user)
	if ok && (full || anyCovers(acl.Write, topic)) {
		return ""
	}
	if kind == topicCommand {
		return ReasonCommand
	}
	return ReasonPublish
}

// OnACLCheck decides subscribes (topic is a filter), deliveries and publishes.
func (a *access) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	if write {
		if reason := a.writeDenied(user, topic); reason != "" {
			a.deny(cl, topic, reason)
			return false
		}
		return true
	}
	acl, full, ok := a.rights(user)
	if ok && (full || anyCovers(acl.Read, sharedFilter(topic))) {
		return true
	}
	reason := ReasonDeliver
	if _, subscribing := a.subscribing.Load(cl); subscribing {
		reason = ReasonSubscribe
	}
	a.deny(cl, topic, reason)
	return false
}

// OnSubscribe and OnSubscribed bracket mochi's ACL checks of a SUBSCRIBE, so that OnACLCheck
// can tell a refused subscription from a refused delivery.
func (a *access) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if !cl.Net.Inline {
		a.subscribing.Store(cl, struct{}{})
	}
	return pk
}

func (a *access) OnSubscribed(cl *mqtt.Client, _ packets.Packet, _ []byte) { a.subscribing.Delete(cl) }

// OnPublish audits every accepted command under the gateway's edge node (the ACL has let it
// through): one count and one line with who sent it (past 50 lines a second, a flood, the
// next line says how many were not logged).
func (a *access) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline || a.edge.kind(pk.TopicName) != topicCommand {
		return pk, nil
	}
	user := string(cl.Properties.Username)
	a.stats.command(user)
	ok, skipped := a.audit.take()
	if !ok {
		return pk, nil
	}
	args := []any{"topic", logx.Value(pk.TopicName), "client", logx.Value(cl.ID), "user", logx.Value(user),
		"remote", cl.Net.Remote, "qos", pk.FixedHeader.Qos, "bytes", len(pk.Payload)}
	if skipped > 0 {
		args = append(args, "commands_not_logged", skipped)
	}
	a.log.Info("mqtt command accepted", args...)
	return pk, nil
}

// deny counts a denial and logs it: once per reason, client and topic per minute, and at
// most a bounded number of denial lines a second in all.
func (a *access) deny(cl *mqtt.Client, topic, reason string) {
	a.stats.deny(reason)
	key := reason + "|" + logx.Value(cl.ID) + "|" + logx.Value(topic)
	if ok, _ := a.lines.Allow(key); !ok {
		return
	}
	ok, skipped := a.flood.take()
	if !ok {
		return
	}
	args := []any{"reason", reason, "client", logx.Value(cl.ID), "user", logx.Value(string(cl.Properties.Username)),
		"remote", cl.Net.Remote, "topic", logx.Value(topic)}
	if skipped > 0 {
		args = append(args, "other_denials_not_logged", skipped)
	}
	a.log.Warn("mqtt access denied", args...)
}

// lineBudget lets at most perSecond lines through each second and counts the rest.
type lineBudget struct {
	perSecond int

	mu      sync.Mutex
	second  int64
	used    int
	skipped int
}

func newLineBudget(perSecond int) *lineBudget { return &lineBudget{perSecond: perSecond} }

// take reports whether a line may be logged now and, if so, how many were refused since the
// last one that was.
func (l *lineBudget) take() (ok bool, skipped int) {
	now := time.Now().Unix()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now != l.second {
		l.second, l.used = now, 0
	}
	if l.used >= l.perSecond {
		l.skipped++
		return false, 0
	}
	l.used++
	skipped, l.skipped = l.skipped, 0
	return true, skipped
}
