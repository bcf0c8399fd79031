package queue_test

import (
	"testing"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/bridge/queue/queuetest"
)

func TestMemoryConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, o queue.Options) queuetest.Queue { return queue.NewMemory(o) })
}
