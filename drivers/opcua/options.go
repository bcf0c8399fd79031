package opcua

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/clock"
)

// Defaults applied where an option is left at its zero value.
const (
	DefaultInterval = time.Second
	DefaultTimeout  = 5 * time.Second
	// DefaultKeepAlive is how often an otherwise silent session is checked with a read of the
	// server's state.
	DefaultKeepAlive = 5 * time.Second
	// minWatchdog is the shortest quiet spell after which a subscription is checked for silence
	// (the default is the longer of this and 5 poll intervals).
	minWatchdog = 20 * time.Second
)

// Modes.
const (
	ModeSubscribe = "subscribe"
	ModePoll      = "poll"
)

// Options configures the driver: its devices and what the process provides them.
type Options struct {
	Devices []DeviceOptions
	// StateDir is where the driver keeps what it learns from servers between runs (the data
	// types of tags configured without a type). Empty: nothing is kept.
	StateDir string
	// Clock drives backoff, poll and keep-alive timers; nil is the real clock.
	Clock clock.Clock
}

// DeviceOptions is one OPC UA server and the tags read from it. The zero values of Mode,
// Interval, Timeout, SecurityPolicy and SecurityMode take the defaults.
type DeviceOptions struct {
	Name     string
	Endpoint string // opc.tcp://host:port[/path]

	SecurityPolicy string // None (default), Basic128Rsa15, Basic256, Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss
	SecurityMode   string // None, Sign, SignAndEncrypt (default with a policy other than None)

	Username, Password           string // user authentication (both, or neither: anonymous)
	UserCertificate, UserKey     string // files: certificate authentication instead of a password
	ServerFingerprint            string // "SHA256:<64 hex digits>": the server certificate to trust
	ServerCertificate            string // file (PEM or DER): the server certificate to trust
	ClientCertificate, ClientKey string // files; when empty, PKIDir holds a created pair
	PKIDir                       string // where client.crt and client.key are created on first use (0600)
	Mode                         string // subscribe (default) or poll
	// PollSchedule is when poll mode's polls start (see drivers.Schedule): "clock" (also "")
	// at whole multiples of Interval since the Unix epoch, or "start": every Interval from the
	// first poll. Subscribe mode ignores it: there the server samples.
	PollSchedule string
	Interval     time.Duration
	Timeout      time.Duration // per request, and for connecting
	KeepAlive    time.Duration // how often a silent session is checked (default 5s)
	Watchdog     time.Duration // quiet spell before a subscription is checked for silence
	Where        string        // where the device is configured ("file:line"), for log lines
	Tags         []TagOptions
}

// TagOptions is one tag: an OPC UA node published as a Sparkplug metric.
type TagOptions struct {
	Name   string // metric name; '/' separates folders
	NodeID string // see ParseNodeID
	// Type is the Sparkplug type to publish, converted from the node's value; empty: the
	// node's own type (see the package documentation).
	Type     string
	Deadband float64 // subscribe: the server's absolute deadband; both modes: report by exception
	Writable bool
	Min, Max *float64 // write range, when set

	Units, Description string
	DeadbandPercent    float64
	MaxInterval        time.Duration

	Where string // where the tag is configured ("file:line"), for log lines
}

// Problem is one thing wrong with a device's options, found without any I/O.
type Problem struct {
	Tag int    // index in DeviceOptions.Tags, or -1 for the device itself
	Key string // the configuration key at fault ("endpoint", "node_id", …); may be empty
	Msg string
}

func (p Problem) String() string { return p.Msg }

// Check validates a device's options without any I/O and returns every problem it finds. It
// is the one place these rules live: New calls it, and the configuration adapter reports the
// problems of the driver's own keys (the configuration checks the common ones: names,
// intervals, deadbands, min and max) with their file and line.
func (o *DeviceOptions) Check() []Problem { return o.check(true) }

// check validates the driver's keys, and with common the keys every device has too.
func (o *DeviceOptions) check(common bool) []Problem {
	var ps []Problem
	bad := func(key, format string, args ...any) {
		ps = append(ps, Problem{Tag: -1, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if common && o.Name == "" {
		bad("name", "device has no name")
	}
	if err := CheckEndpoint(o.Endpoint); err != nil {
		bad("endpoint", "%v", err)
	}
	policy, err := ParseSecurityPolicy(o.SecurityPolicy)
	if err != nil {
		bad("security_policy", "%v", err)
	}
	mode, err := ParseSecurityMode(o.SecurityMode)
	if err != nil {
		bad("security_mode", "%v", err)
	}
	for _, msg := range securityRules(policy, mode, o) {
		bad(msg.key, "%s", msg.text)
	}
	if _, err := ParseMode(o.Mode); err != nil {
		bad("mode", "%v", err)
	}
	if _, err := drivers.ParseSchedule(o.PollSchedule); common && err != nil {
		bad("poll_schedule", "%v", err)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"poll_interval", o.Interval}, {"timeout", o.Timeout}} {
		if common && (d.v < 0 || (d.v > 0 && d.v < time.Millisecond)) {
			bad(d.key, "%s %v must be at least 1ms", d.key, d.v)
		}
	}
	names := map[string]bool{}
	for i := range o.Tags {
		for _, p := range o.Tags[i].check(common) {
			p.Tag = i
			ps = append(ps, p)
		}
		if n := o.Tags[i].Name; common && n != "" {
			if names[n] {
				ps = append(ps, Problem{Tag: i, Key: "name", Msg: "tag name is used twice in this device"})
			}
			names[n] = true
		}
	}
	return ps
}

// check validates one tag: the driver's keys, and with common the common ones too.
func (t *TagOptions) check(common bool) []Problem {
	var ps []Problem
	bad := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if common && t.Name == "" {
		bad("name", "tag has no name")
	}
	if t.NodeID == "" {
		bad("node_id", "tag needs node_id, such as \"ns=2;s=Separator.Level\"")
	} else if _, err := ParseNodeID(t.NodeID); err != nil {
		bad("node_id", "%v", err)
	}
	typ, err := ParseType(t.Type)
	if err != nil {
		bad("type", "%v", err)
	}
	switch {
	case t.Deadband < 0 || math.IsNaN(t.Deadband) || math.IsInf(t.Deadband, 0):
		if common {
			bad("deadband", "deadband %g must be a finite number, 0 or more", t.Deadband)
		}
	case t.Deadband > 0 && typ != drivers.Unknown && !numeric(typ):
		bad("deadband", "a deadband applies to numbers, not %s", typ)
	}
	if common && t.Min != nil && t.Max != nil && *t.Min > *t.Max {
		bad("min", "min %g is greater than max %g", *t.Min, *t.Max)
	}
	if (t.Min != nil || t.Max != nil) && typ != drivers.Unknown && !numeric(typ) {
		bad("min", "min and max apply to numbers, not %s", typ)
	}
	return ps
}

// CheckEndpoint checks an endpoint URL's form: opc.tcp://host:port with an optional path.
func CheckEndpoint(s string) error {
	if s == "" {
		return fmt.Errorf("opcua needs endpoint = \"opc.tcp://host:4840\"")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("endpoint %q: %v", s, err)
	}
	if u.Scheme != "opc.tcp" {
		return fmt.Errorf("endpoint %q must start with opc.tcp://", s)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("endpoint %q has no host", s)
	}
	if p := u.Port(); p != "" {
		if _, err := parseDecimal(p, 65535); err != nil || p == "0" {
			return fmt.Errorf("endpoint %q: port must be 1…65535", s)
		}
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("endpoint %q: user, query and fragment are not allowed (set username and password)", s)
	}
	return nil
}

// ParseMode parses a device's mode: "subscribe" (default, also for "") or "poll".
func ParseMode(s string) (string, error) {
	switch strings.ToLower(s) {
	case "", ModeSubscribe:
		return ModeSubscribe, nil
	case ModePoll:
		return ModePoll, nil
	}
	return "", fmt.Errorf("mode %q must be subscribe or poll", s)
}

type keyed struct{ key, text string }

// securityRules are the rules that combine the security keys.
func securityRules(policy string, mode ua.MessageSecurityMode, o *DeviceOptions) []keyed {
	var out []keyed
	add := func(key, format string, args ...any) { out = append(out, keyed{key, fmt.Sprintf(format, args...)}) }
	secured := policy != "" && policy != ua.SecurityPolicyURINone
	switch {
	case !secured && (mode == ua.MessageSecurityModeSign || mode == ua.MessageSecurityModeSignAndEncrypt):
		add("security_mode", "security_mode %s needs a security_policy other than None", o.SecurityMode)
	case secured && mode == ua.MessageSecurityModeNone:
		add("security_mode", "security_policy %s needs security_mode Sign or SignAndEncrypt, not None", o.SecurityPolicy)
	}
	pair := func(a, b, aKey, bKey string) {
		switch {
		case a != "" && b == "":
			add(aKey, "%s and %s go together", aKey, bKey)
		case a == "" && b != "":
			add(bKey, "%s and %s go together", aKey, bKey)
		}
	}
	pair(o.Username, o.Password, "username", "password")
	pair(o.UserCertificate, o.UserKey, "user_certificate", "user_key")
	pair(o.ClientCertificate, o.ClientKey, "client_certificate", "client_key")
	if o.Username != "" && o.UserCertificate != "" {
		add("user_certificate", "choose one user authentication: username and password, or user_certificate and user_key")
	}
	if o.ServerFingerprint != "" {
		if _, err := ParseFingerprint(o.ServerFingerprint); err != nil {
			add("server_fingerprint", "%v", err)
		}
	}
	if !secured && (o.ServerFingerprint != "" || o.ServerCertificate != "") {
		add("server_fingerprint", "with security_policy None no server certificate is checked: set security_policy, or remove server_fingerprint and server_certificate")
	}
	if secured && o.ClientCertificate == "" && o.PKIDir == "" {
		add("client_certificate", "a secured connection needs client_certificate and client_key, or a data directory to create them in")
	}
	return out
}

// withDefaults returns o with the defaults applied to its zero values.
func (o DeviceOptions) withDefaults() DeviceOptions {
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.Watchdog == 0 {
		o.Watchdog = max(minWatchdog, 5*o.Interval)
	}
	o.Mode, _ = ParseMode(o.Mode)
	return o
}
