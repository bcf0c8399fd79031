package opcua

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
)

// Error kinds counted in DeviceStatus.ErrorsByKind.
const (
	kindTimeout    = "timeout"
	kindConnection = "connection"
	kindSecurity   = "security" // untrusted certificate, refused credentials, security checks
	kindStatus     = "status"   // a service answered with a bad status
	kindConfig     = "config"   // the server has no endpoint or token the device asks for
	kindWatchdog   = "watchdog" // a subscription went silent while the session answered
)

// errorKind classifies an error for the counters.
func errorKind(err error) string {
	var untrusted *UntrustedError
	var ne net.Error
	var sc ua.StatusCode
	switch {
	case errors.As(err, &untrusted):
		return kindSecurity
	case errors.Is(err, errSilent):
		return kindWatchdog
	case errors.Is(err, errNoEndpoint):
		return kindConfig
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, ua.StatusBadTimeout),
		errors.Is(err, ua.StatusBadRequestTimeout), errors.As(err, &ne) && ne.Timeout():
		return kindTimeout
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, errLost), errors.As(err, &ne):
		return kindConnection
	case errors.As(err, &sc):
		switch sc {
		case ua.StatusBadSecurityChecksFailed, ua.StatusBadCertificateInvalid, ua.StatusBadCertificateUntrusted,
			ua.StatusBadIdentityTokenRejected, ua.StatusBadIdentityTokenInvalid, ua.StatusBadUserAccessDenied,
			ua.StatusBadSecurityPolicyRejected, ua.StatusBadCertificateTimeInvalid, ua.StatusBadCertificateURIInvalid:
			return kindSecurity
		case ua.StatusBadServerNotConnected, ua.StatusBadConnectionClosed, ua.StatusBadSecureChannelClosed,
			ua.StatusBadSecureChannelIDInvalid, ua.StatusBadSessionIDInvalid, ua.StatusBadSessionClosed,
			ua.StatusBadNotConnected, ua.StatusBadCommunicationError:
			return kindConnection
		}
		return kindStatus
	case strings.Contains(err.Error(), "connection refused"), strings.Contains(err.Error(), "broken pipe"):
		return kindConnection
	}
	return kindConnection
}

// stats are one device's communication counters. The device goroutine and writers update
// them; Status reads them from anywhere.
type stats struct {
	mu        sync.Mutex
	up        bool
	requests  uint64
	errors    uint64
	byKind    map[string]uint64
	lastErr   string
	lastErrAt time.Time
	lastGood  time.Time
	response  time.Duration
}

// ok records a request that got an answer.
func (s *stats) ok(took time.Duration, at time.Time) {
	s.mu.Lock()
	s.requests++
	s.response = took
	s.lastGood = at
	s.mu.Unlock()
}

// failed records a failed request or connection attempt.
func (s *stats) failed(err error, at time.Time) {
	s.mu.Lock()
	s.requests++
	s.errors++
	if s.byKind == nil {
		s.byKind = map[string]uint64{}
	}
	s.byKind[errorKind(err)]++
	s.lastErr, s.lastErrAt = err.Error(), at
	s.mu.Unlock()
}

// data records data that arrived without a request (a subscription's notification).
func (s *stats) data(at time.Time) {
	s.mu.Lock()
	s.lastGood = at
	s.mu.Unlock()
}

func (s *stats) setUp(up bool) {
	s.mu.Lock()
	s.up = up
	s.mu.Unlock()
}

func (s *stats) snapshot(name string) drivers.DeviceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return drivers.DeviceStatus{
		Device: name, Up: s.up, Requests: s.requests, Errors: s.errors,
		ErrorsByKind: maps.Clone(s.byKind), LastError: s.lastErr, LastErrorAt: s.lastErrAt,
		LastGood: s.lastGood, ResponseTime: s.response,
	}
}

// Status returns every device's counters (drivers.StatusReporter). Safe for concurrent use.
func (d *Driver) Status() []drivers.DeviceStatus {
	out := make([]drivers.DeviceStatus, len(d.devices))
	for i, dev := range d.devices {
		out[i] = dev.stats.snapshot(dev.name)
	}
	return out
}
