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

// writeQueues holds one FIFO of pending writes per device that accepts writes. While a
// generation serves them (serve), a device with writes pending has one goroutine of its own,
// started by its first write and gone once its queue is empty: a device that answers reads
// but ignores writes delays only its own writes, and 200 devices that are never written to
// cost no goroutines (the simulator's fleet marks every tag writable).
type writeQueues struct {
	mu      sync.Mutex
	byDev   map[string]*writeQueue
	bytes   int    // pending, all devices
	refused uint64 // writes refused because the bound was reached
	serving *serving // the generation that carries writes out; nil between generations
}

type writeQueue struct {
	reqs []writeReq
	busy bool // its goroutine is running
}

// serving is one generation's part in carrying out writes.
type serving struct {
	ctx     context.Context
	do      func(writeReq)
	workers sync.WaitGroup
}

func newWriteQueues(devices []string) *writeQueues {
	q := &writeQueues{byDev: make(map[string]*writeQueue, len(devices))}
	for _, d := range devices {
		q.byDev[d] = &writeQueue{}
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
	q.startLocked(r.w.Device, dq)
	return nil
}

// startLocked starts device's goroutine if it has writes, none runs and a generation serves.
// Called with mu held.
func (q *writeQueues) startLocked(device string, dq *writeQueue) {
	sv := q.serving
	if dq.busy || sv == nil || len(dq.reqs) == 0 {
		return
	}
	dq.busy = true
	sv.workers.Add(1)
	go func() {
		defer sv.workers.Done()
		for {
			r, ok := q.take(sv, device, dq)
			if !ok {
				return
			}
			sv.do(r)
		}
	}()
}

// take hands device's goroutine its next write; when there is none (or the generation has
// ended, or a reload dropped the device) it marks the goroutine gone and reports false.
func (q *writeQueues) take(sv *serving, device string, dq *writeQueue) (writeReq, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(dq.reqs) == 0 || sv.ctx.Err() != nil || q.byDev[device] != dq {
		dq.busy = false
		return writeReq{}, false
	}
	r := dq.reqs[0]
	dq.reqs[0] = writeReq{}
	dq.reqs = dq.reqs[1:]
	q.bytes -= r.size()
	return r, true
}

// setDevices makes the queues those of devices (a reload): a device that stays keeps its
// pending writes, one that is gone loses them (counted out of the byte bound), a new one gets
// an empty queue. The generation that served the old set must have stopped.
func (q *writeQueues) setDevices(devices []string) (dropped int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	by := make(map[string]*writeQueue, len(devices))
	for _, d := range devices {
		if dq := q.byDev[d]; dq != nil {
			by[d] = dq
			continue
		}
		by[d] = &writeQueue{}
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

// pending counts queued writes and refusals, for tests and the page.
func (q *writeQueues) pending() (writes int, bytes int, refused uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, dq := range q.byDev {
		writes += len(dq.reqs)
	}
	return writes, q.bytes, q.refused
}

// serve carries out the writes, each device's in order, until ctx ends, and returns once
// every device goroutine it started has returned. A device's goroutine stops after its
// write in progress when ctx ends: what is still pending then is dropped at shutdown (a write
// asked for before shutdown is not carried out after it) and kept across a reload for a
// device that stays (setDevices), for the next generation's serve.
func (q *writeQueues) serve(ctx context.Context, do func(writeReq)) {
	sv := &serving{ctx: ctx, do: do}
	q.mu.Lock()
	q.serving = sv
	for device, dq := range q.byDev {
		q.startLocked(device, dq)
	}
	q.mu.Unlock()
	<-ctx.Done()
	q.mu.Lock()
	if q.serving == sv {
		q.serving = nil
	}
	q.mu.Unlock()
	sv.workers.Wait()
}
