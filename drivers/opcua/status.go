package opcua

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
)

// Error kinds counted in DeviceStatus.ErrorsByKind.
const (
	kindTimeout    = "timeout"
	kindConnection = "connection"
	kindSecurity   = "security"     // untrusted certificate, refused credentials, security checks
	kindStatus     = "status"       // a service answered with a bad status
	kindConfig     = "config"       // the server has no endpoint or token the device asks for
	kindWatchdog   = "watchdog"     // a subscription went silent while the session answered
	kindOverrun    = "poll_overrun" // poll mode: a poll ended after the next was due, which was skipped
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

// Status returns every device's counters (drivers.StatusReporter). Safe for concurrent use.
func (d *Driver) Status() []drivers.DeviceStatus {
	out := make([]drivers.DeviceStatus, len(d.devices))
	for i, dev := range d.devices {
		out[i] = dev.stats.Status(dev.name)
	}
	return out
}
