package gateway

import (
	"sort"
	"sync"

	"github.com/wellgate/wellgate/internal/logx"
)

// health records the parts that have failed, for /healthz and the page. A device that does
// not answer is not a failure of the gateway; a part that stopped is.
type health struct {
	mu     sync.Mutex
	failed map[string]string // part → why
}

func (h *health) fail(part string, err error) {
	if err == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed == nil {
		h.failed = map[string]string{}
	}
	h.failed[part] = logx.Err(err)
}

// failures lists "part: why" for every failed part, sorted.
func (h *health) failures() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.failed))
	for p, why := range h.failed {
		out = append(out, p+": "+why)
	}
	sort.Strings(out)
	return out
}

// tracked runs a part and records its failure.
func (h *health) tracked(part string, fn func() error) func() error {
	return func() error {
		err := fn()
		h.fail(part, err)
		return err
	}
}
