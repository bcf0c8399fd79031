package queue_test

import (
	"log/slog"
	"testing"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/bridge/queue/queuetest"
)

func TestDiskConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, o queue.Options) queuetest.Queue {
		d, err := queue.OpenDisk(t.TempDir(), o, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
	// The same suite with tiny segments, so that every test crosses segment boundaries.
	t.Run("SmallSegments", func(t *testing.T) {
		queuetest.Run(t, func(t *testing.T, o queue.Options) queuetest.Queue {
			o.SegmentSize = 100
			d, err := queue.OpenDisk(t.TempDir(), o, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			return d
		})
	})
}
