package gateway

import (
	"context"
	"fmt"
	"sync"

	"github.com/wellgate/wellgate/sparkplug"
)

// Pending device writes are bounded in bytes across all devices: a flood of large DCMDs is
// refused (counted and logged), never queued without end.
const maxPendingWriteBytes = 1 << 20

// writeOverhead is what one queued write costs beyond its strings.
const writeOverhead = 96

// writeReq is one write a command asked for.
type writeReq struct {
	origin string // "local" or "upstream"
	w      sparkplug.Write
}

func (r writeReq) size() int {
	return writeOverhead + len(r.w.Device) + len(r.w.Tag) + len(r.w.Value.Str())
}

// writeQueues holds one FIFO of pending writes per device that accepts writes, each served
// by its own goroutine (run), so that a device that answers reads but ignores writes delays
// only its own writes.
type writeQueues struct {
	mu      sync.Mutex
	byDev   map[string]*writeQueue
	bytes   int    // pending, all devices
	refused uint64 // writes refused because the bound was reached
}

type writeQueue struct {
	reqs []writeReq
	wake chan struct{}
}

func newWriteQueues(devices []string) *writeQueues {
	q := &writeQueues{byDev: make(map[string]*writeQueue, len(devices))}
	for _, d := range devices {
		q.byDev[d] = &writeQueue{wake: make(chan struct{}, 1)}
	}
	return q
}

// put queues r for its device. It refuses writes for a device that accepts none and writes
// past the byte bound.
func (q *writeQueues) put(r writeReq) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	dq := q.byDev[r.w.Device]
	if dq == nil {
		return fmt.Errorf("device %q does not accept writes", r.w.Device)
	}
	if n := r.size(); q.bytes+n > maxPendingWriteBytes {
		q.refused++
		return fmt.Errorf("%d bytes of writes already pending (limit %d): command refused", q.bytes, maxPendingWriteBytes)
	} else {
		q.bytes += n
	}
	dq.reqs = append(dq.reqs, r)
	select {
	case dq.wake <- struct{}{}:
	default:
	}
	return nil
}

// setDevices makes the queues those of devices (a reload): a device that stays keeps its
// pending writes, one that is gone loses them (counted out of the byte bound), a new one gets
// an empty queue. The goroutines of the old set must have stopped.
func (q *writeQueues) setDevices(devices []string) (dropped int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	by := make(map[string]*writeQueue, len(devices))
	for _, d := range devices {
		if dq := q.byDev[d]; dq != nil {
			by[d] = dq
			continue
		}
		by[d] = &writeQueue{wake: make(chan struct{}, 1)}
	}
	for d, dq := range q.byDev {
		if by[d] != nil {
			continue
		}
		for _, r := range dq.reqs {
			q.bytes -= r.size()
		}
		dropped += len(dq.reqs)
	}
	q.byDev = by
	return dropped
}

// wakeOf returns device's wake channel, nil for a device without a queue.
func (q *writeQueues) wakeOf(device string) chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if dq := q.byDev[device]; dq != nil {
		return dq.wake
	}
	return nil
}

// next takes the oldest pending write of device, if any.
func (q *writeQueues) next(device string) (writeReq, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	dq := q.byDev[device]
	if dq == nil || len(dq.reqs) == 0 {
		return writeReq{}, false
	}
	r := dq.reqs[0]
	dq.reqs[0] = writeReq{}
	dq.reqs = dq.reqs[1:]
	q.bytes -= r.size()
	return r, true
}

// pending counts queued writes and refusals, for tests and the page.
func (q *writeQueues) pending() (writes int, bytes int, refused uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, dq := range q.byDev {
		writes += len(dq.reqs)
	}
	return writes, q.bytes, q.refused
}

// run performs device's writes in order until ctx ends; what is still pending then is
// dropped at shutdown (a write asked for before shutdown is not carried out after it) and kept
// across a reload for a device that stays (setDevices).
func (q *writeQueues) run(ctx context.Context, device string, do func(writeReq)) error {
	wake := q.wakeOf(device)
	if wake == nil {
		return nil
	}
	for {
		for {
			r, ok := q.next(device)
			if !ok {
				break
			}
			do(r)
			if ctx.Err() != nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
	}
}
