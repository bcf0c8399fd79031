package queue

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wellgate/wellgate/internal/logx"
)

// Disk is the crash-safe queue: append-only segment files in one directory, records framed
// with length and CRC-32C, group commit (one fsync of the written segments every
// SyncInterval and on Close) and a 20-byte ack cursor file replaced atomically at the same
// commits. It writes sequentially and never rewrites a segment: flash-friendly.
//
// Durability: records reach the disk at most SyncInterval after Add returned, and an Ack
// becomes durable at the next commit; after a crash the last interval's adds may be missing
// and the last interval's acks may be replayed again (duplicates, never a hole in what had
// been committed). Recovery on open drops only torn or corrupt tails, with a log line.
//
// A Disk is safe for concurrent use.
type Disk struct {
	dir  string
	opts Options
	log  *slog.Logger
	// create opens a new segment for appending (replaced in tests to inject write errors).
	create func(path string) (segFile, error)

	mu       sync.Mutex
	segs     []*segment // oldest first
	active   segFile    // append handle of the last segment; nil: the next Add starts a new one
	nextID   uint64
	head     pos        // oldest record not acked
	read     pos        // next record Begin hands out
	tail     pos        // where the next record goes
	unsynced []heldFile // append handles of sealed segments, for the next commit to sync and close
	dirty    bool       // active has writes not yet synced
	dirDirty bool       // a segment was created since the last commit
	ackDirty bool
	readers  map[uint64]*os.File
	headTime struct {
		seq uint64
		t   time.Time
		ok  bool
	}
	wbuf, rbuf   []byte
	dropped      map[DropReason]uint64
	droppedBytes uint64
	syncs        uint64
	syncErrors   uint64
	writeErrors  uint64
	lastErr      string
	closed       bool

	fullLog *logx.Limiter // disk-full drops log at most once per fullLogEvery

	stop chan struct{}
	done chan struct{}
	kick chan struct{} // wakes the commit loop: something to commit (see wake)
}

// heldFile is an append handle waiting for the commit, with its segment's id.
type heldFile struct {
	id uint64
	f  segFile
}

// segFile is what Disk needs of a segment opened for appending.
type segFile interface {
	io.Writer
	Sync() error
	Close() error
	Truncate(size int64) error
}

// segment is the in-memory index entry of one segment file.
type segment struct {
	id       uint64
	path     string
	size     int64  // end of the last valid record
	count    int    // valid records from the recovery offset (or the start) to size
	firstSeq uint64 // sequence number of the first counted record
	base     int64  // logical byte offset of the segment's first record
}

var _ interface {
	Add(...[]byte) error
	Begin(int) (*Tx, error)
	Ack(*Tx) error
	Nack(*Tx)
	Len() int
	Bytes() int64
	OldestAge() time.Duration
	Stats() Stats
	Close() error
} = (*Disk)(nil)

// OpenDisk opens (creating it if needed) the queue kept in dir, recovers what a crash left
// and starts the group-commit loop. Close it.
func OpenDisk(dir string, opts Options, log *slog.Logger) (*Disk, error) {
	return openDisk(dir, opts, log, createSegment)
}

func openDisk(dir string, opts Options, log *slog.Logger, create func(string) (segFile, error)) (*Disk, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = 200 * time.Millisecond
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = 16 << 20
		if opts.MaxBytes > 0 {
			opts.SegmentSize = max(min(opts.SegmentSize, opts.MaxBytes/8), 64<<10)
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("queue: create %s: %w", dir, err)
	}
	d := &Disk{
		dir: dir, opts: opts, log: log, create: create,
		readers: map[uint64]*os.File{},
		dropped: map[DropReason]uint64{},
		fullLog: logx.NewLimiter(fullLogEvery),
		stop:    make(chan struct{}), done: make(chan struct{}), kick: make(chan struct{}, 1),
	}
	if err := d.recover(); err != nil {
		d.closeReaders()
		return nil, err
	}
	d.mu.Lock()
	d.enforceBounds()
	d.mu.Unlock()
	go d.commitLoop()
	return d, nil
}

func createSegment(path string) (segFile, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
}

// Add appends records at the tail. It copies them. When the disk is full (ENOSPC, EDQUOT) it
// frees the oldest segment, counting its records as DropDiskFull, and tries again, until the
// records fit or nothing older is left; only then does it return the error, having added none
// of them, with what was queued before intact: the newest data is kept, not the oldest.
func (d *Disk) Add(records ...[]byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if err := d.opts.checkSizes(records); err != nil {
		return err
	}
	if len(records) == 0 {
		return nil
	}
	now := d.opts.now()
	d.wbuf = d.wbuf[:0]
	for _, r := range records {
		d.wbuf = appendRecord(d.wbuf, r, now)
	}
	for {
		err := d.appendBuf(len(records))
		if err == nil {
			break
		}
		if !diskFull(err) || !d.freeOldest(err) {
			return d.writeFailed(err)
		}
	}
	if cap(d.wbuf) > 4<<20 {
		d.wbuf = nil // do not pin a huge batch's buffer
	}
	d.enforceBounds()
	return nil
}

// appendBuf writes the framed records in wbuf (n of them) to the active segment.
func (d *Disk) appendBuf(n int) error {
	if err := d.prepareActive(); err != nil {
		return err
	}
	seg := d.segs[len(d.segs)-1]
	if _, err := d.active.Write(d.wbuf); err != nil {
		d.sealActive(seg)
		return fmt.Errorf("append to %s: %w", seg.path, err)
	}
	size := int64(len(d.wbuf))
	seg.size += size
	seg.count += n
	d.tail = pos{seq: d.tail.seq + uint64(n), seg: seg.id, off: seg.size, logical: d.tail.logical + size}
	d.dirty = true
	d.wake()
	return nil
}

func (d *Disk) writeFailed(err error) error {
	d.writeErrors++
	d.lastErr = err.Error()
	return fmt.Errorf("queue: %w", err)
}

// prepareActive makes sure there is a segment open for appending that is not full.
func (d *Disk) prepareActive() error {
	if d.active != nil && d.segs[len(d.segs)-1].size < d.opts.SegmentSize {
		return nil
	}
	id := d.nextID
	path := filepath.Join(d.dir, segName(id))
	f, err := d.create(path)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	if _, err := f.Write([]byte(segMagic)); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("create segment %s: %w", path, err)
	}
	d.nextID++
	if d.active != nil {
		d.unsynced = append(d.unsynced, heldFile{d.segs[len(d.segs)-1].id, d.active})
	}
	d.active, d.dirty, d.dirDirty = f, true, true
	s := &segment{id: id, path: path, size: segHeaderLen, firstSeq: d.tail.seq, base: d.tail.logical}
	d.segs = append(d.segs, s)
	if len(d.segs) == 1 {
		d.head = pos{seq: d.tail.seq, seg: id, off: segHeaderLen, logical: d.tail.logical}
		d.read = d.head
	}
	d.tail = pos{seq: d.tail.seq, seg: id, off: segHeaderLen, logical: d.tail.logical}
	return nil
}

// sealActive stops appending to seg after a failed write: it cuts off what the failed write
// may have left (if it can) and hands the handle to the next commit. The next Add starts a
// new segment, so a partial record is never followed by good ones.
func (d *Disk) sealActive(seg *segment) {
	if err := d.active.Truncate(seg.size); err != nil {
		d.log.Warn("queue: cannot cut a failed write off; recovery will drop it", "file", seg.path, "err", err)
	}
	d.unsynced = append(d.unsynced, heldFile{seg.id, d.active})
	d.active = nil
	d.wake()
}

// Close commits what is pending, closes the files and stops the commit loop. It is
// idempotent and gives up after 10 seconds on a hung disk.
func (d *Disk) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	close(d.stop)
	<-d.done
	errc := make(chan error, 1)
	go func() { errc <- d.finalCommit() }()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case err := <-errc:
		return err
	case <-t.C:
		return errors.New("queue: close: final commit did not finish in 10s")
	}
}

func (d *Disk) finalCommit() error {
	err := d.commit()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.active != nil {
		if cerr := d.active.Close(); err == nil {
			err = cerr
		}
		d.active = nil
	}
	d.closeReaders()
	return err
}

func (d *Disk) closeReaders() {
	for id, f := range d.readers {
		f.Close()
		delete(d.readers, id)
	}
}
