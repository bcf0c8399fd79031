package gateway

import (
	"log/slog"
)

// closers is what a start has opened so far, closed in reverse order when Run ends — also
// when the start fails half-way, so that no port or file stays open.
type closers []namedCloser

type namedCloser struct {
	name string
	fn   func() error
}

func (c *closers) add(name string, fn func() error) { *c = append(*c, namedCloser{name, fn}) }

// close runs every closer, last opened first, logging failures. Each closer is idempotent.
func (c *closers) close(log *slog.Logger) {
	for i := len(*c) - 1; i >= 0; i-- {
		if err := (*c)[i].fn(); err != nil {
			log.Warn("close", "part", (*c)[i].name, "err", err)
		}
	}
	*c = nil
}
