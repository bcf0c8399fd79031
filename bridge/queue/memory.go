package queue

import (
	"sync"
	"time"
)

// Memory is a queue in RAM with the same contract, bounds and counters as Disk, for tests
// and for setups without a data directory. Its contents do not survive a restart.
// A Memory is safe for concurrent use.
type Memory struct {
	opts Options

	mu      sync.Mutex
	recs    []memRecord // recs[off:] are queued; recs[off] has sequence number headSeq
	off     int
	headSeq uint64
	readSeq uint64
	bytes   int64
	dropped map[DropReason]uint64
	dbytes  uint64
	closed  bool
}

type memRecord struct {
	data  []byte
	added time.Time
}

// NewMemory returns an empty in-memory queue.
func NewMemory(opts Options) *Memory {
	return &Memory{opts: opts, dropped: map[DropReason]uint64{}}
}

// Add appends copies of records at the tail.
func (m *Memory) Add(records ...[]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if err := m.opts.checkSizes(records); err != nil {
		return err
	}
	now := m.opts.now().Truncate(time.Second) // the same resolution as Disk
	for _, r := range records {
		m.recs = append(m.recs, memRecord{data: append([]byte(nil), r...), added: now})
		m.bytes += int64(len(r) + RecordOverhead)
	}
	m.enforceBounds()
	return nil
}

func (m *Memory) tailSeq() uint64 { return m.headSeq + uint64(len(m.recs)-m.off) }

// dropHead removes the oldest record; reason "" means acked.
func (m *Memory) dropHead(reason DropReason) {
	r := m.recs[m.off]
	m.recs[m.off] = memRecord{}
	m.off++
	m.headSeq++
	m.bytes -= int64(len(r.data) + RecordOverhead)
	if reason != "" {
		m.dropped[reason]++
		m.dbytes += uint64(len(r.data) + RecordOverhead)
	}
	if m.readSeq < m.headSeq {
		m.readSeq = m.headSeq
	}
	if m.off > 1024 && m.off*2 > len(m.recs) {
		m.recs = append([]memRecord(nil), m.recs[m.off:]...)
		m.off = 0
	}
}

func (m *Memory) enforceBounds() {
	for m.opts.MaxBytes > 0 && m.bytes > m.opts.MaxBytes && m.off < len(m.recs) {
		m.dropHead(DropBytes)
	}
	now := m.opts.now()
	for m.off < len(m.recs) && tooOld(m.recs[m.off].added, now, m.opts.MaxAge) {
		m.dropHead(DropAge)
	}
}

// Begin hands out the oldest records not yet handed out, at most n of them.
func (m *Memory) Begin(n int) (*Tx, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	m.enforceBounds()
	tx := &Tx{owner: m, start: pos{seq: m.readSeq}}
	for m.readSeq < m.tailSeq() && len(tx.Records) < n {
		r := m.recs[m.off+int(m.readSeq-m.headSeq)]
		tx.Records = append(tx.Records, append([]byte(nil), r.data...))
		m.readSeq++
	}
	tx.end = pos{seq: m.readSeq}
	return tx, nil
}

// Ack removes the records of tx and every older record.
func (m *Memory) Ack(tx *Tx) error {
	if tx == nil {
		return nil
	}
	if tx.owner != m {
		return ErrForeign
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for m.headSeq < tx.end.seq && m.off < len(m.recs) {
		m.dropHead("")
	}
	return nil
}

// Nack rolls back: the next Begin hands out again every record not acked.
func (m *Memory) Nack(tx *Tx) {
	if tx == nil || tx.owner != m {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.readSeq = m.headSeq
}

// Len returns the number of queued records.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enforceBounds()
	return len(m.recs) - m.off
}

// Bytes returns the bytes of the queued records, counting RecordOverhead for each as Disk does.
func (m *Memory) Bytes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enforceBounds()
	return m.bytes
}

// OldestAge returns how long ago the oldest queued record was added (0 when empty).
func (m *Memory) OldestAge() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enforceBounds()
	return m.oldestAge()
}

func (m *Memory) oldestAge() time.Duration {
	if m.off >= len(m.recs) || m.recs[m.off].added.Before(ageFloor) {
		return 0
	}
	return max(m.opts.now().Sub(m.recs[m.off].added), 0)
}

// Stats returns the queue's counters.
func (m *Memory) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enforceBounds()
	st := Stats{Records: len(m.recs) - m.off, Bytes: m.bytes, OldestAge: m.oldestAge(),
		Dropped: map[DropReason]uint64{}, DroppedBytes: m.dbytes}
	for k, v := range m.dropped {
		st.Dropped[k] = v
	}
	return st
}

// Close drops the contents. It is idempotent.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.recs, m.off = nil, 0
	return nil
}
