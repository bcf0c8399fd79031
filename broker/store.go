package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	pebbledb "github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/cockroachdb/pebble/vfs/errorfs"

	"github.com/wellgate/wellgate/internal/backoff"
	"github.com/wellgate/wellgate/internal/logx"
)

// The session store keeps persistent sessions, their subscriptions and queued messages and
// the retained messages in pebble, synced on every write, in mochi's own key layout (so that
// a data dir written by the mochi pebble hook loads).
//
// A failing disk must never stop the broker: every write goes through one writer goroutine
// per pebble instance (which commits queued writes in one synced batch) and a caller waits
// for it at most the store timeout; a write that could not even be queued in that time makes
// the writer rewrite the whole state once it catches up. When pebble fails (a full disk, an
// I/O error, a commit stuck past the timeout, or a fatal error pebble reports through its
// logger, which here marks the instance poisoned instead of panicking), the instance is
// fenced (its file system refuses every further write), closed in the background and
// dropped: the broker goes on with its sessions in memory ("degraded"). A supervisor reopens
// pebble with backoff and, once it opens, rewrites the whole in-memory state into it. A store
// that cannot be opened read-write at start (pebble replays its WAL with a flush, which a
// full disk fails) is read read-only, so that the sessions on it are still loaded.

// storeFS is the file system under the store (vfs.Default, or a failing one in tests).
type storeFS = vfs.FS

// kv is one store write: a nil value deletes the key.
type kv struct {
	key   string
	value []byte
}

var (
	errFenced = errors.New("session store instance abandoned after a failure")
)

type store struct {
	dir   string
	base  storeFS
	log   *slog.Logger
	limit *logx.Limiter
	retry time.Duration
	// timeout bounds how long a publisher waits for one store write, and a close.
	timeout time.Duration
	// snapshot returns the broker's whole state as store writes; a reopened store is
	// rewritten from it.
	snapshot func() []kv

	mu      sync.Mutex
	cur     *instance // nil while degraded
	loaded  bool      // the store's contents were read into memory at start
	lastErr string
	started bool
	closed  bool

	errors, recoveries atomic.Uint64

	// initial is what the sessions are loaded from at start (the read-write or a read-only
	// instance), nil when the store could not be read at all.
	initial     *pebbledb.DB
	initialDone func()

	closing sync.WaitGroup // instances being closed

	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// openStore opens the store under dir. It never fails: a store that cannot be opened is
// reported, and the broker runs degraded until the supervisor (started by start) reopens it.
func openStore(dir string, fs storeFS, retry, timeout time.Duration, log *slog.Logger) *store {
	if fs == nil {
		fs = vfs.Default
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &store{dir: dir, base: fs, log: log, limit: logx.NewLimiter(time.Minute), retry: retry, timeout: timeout,
		initialDone: func() {}, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	in, err := s.open(false)
	if err == nil {
		s.cur, s.initial = in, in.db
		return s
	}
	s.failed(fmt.Errorf("open %s: %w", dir, err))
	s.log.Error("session store: cannot open; serving with sessions in memory only until it can",
		"dir", dir, "err", logx.Err(err))
	ro, rerr := s.open(true)
	if rerr != nil {
		s.log.Error("session store: cannot read it either; starting without the sessions on disk",
			"dir", dir, "err", logx.Err(rerr))
		return s
	}
	s.initial, s.initialDone = ro.db, func() { ro.abandon(nil) }
	return s
}

// scan calls fn for every key with prefix in the initial store, in key order.
func (s *store) scan(prefix string, fn func(key string, value []byte)) {
	if s.initial == nil {
		return
	}
	it, err := s.initial.NewIter(&pebbledb.IterOptions{LowerBound: []byte(prefix), UpperBound: upperBound(prefix)})
	if err != nil {
		s.log.Error("session store: read", "prefix", prefix, "err", logx.Err(err))
		return
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		fn(string(it.Key()), it.Value())
	}
}

func upperBound(prefix string) []byte {
	b := []byte(prefix)
	b[len(b)-1]++
	return b
}

// start ends the initial load and starts writing: pending (what the load found to delete)
// first, then the current instance's writer and the supervisor that reopens a failed store.
func (s *store) start(pending []kv) {
	s.mu.Lock()
	s.loaded = s.initial != nil
	s.started = true
	in := s.cur
	s.mu.Unlock()
	s.initialDone()
	s.initial = nil
	if in != nil {
		if len(pending) > 0 {
			in.reqs <- &request{ops: pending, done: make(chan error, 1)} // the queue is empty: this does not block
		}
		go in.run(false)
	}
	go s.supervise()
}

// open opens a pebble instance on a fenced file system of its own.
func (s *store) open(readOnly bool) (*instance, error) {
	in := &instance{s: s, reqs: make(chan *request, 256), dead: make(chan struct{}), poisoned: make(chan struct{})}
	in.fs = newFenceFS(s.base)
	db, err := openPebble(s.dir, in, readOnly)
	if err != nil {
		in.fs.fence()
		in.fs.releaseLocks()
		return nil, err
	}
	in.db = db
	return in, nil
}

func openPebble(dir string, in *instance, readOnly bool) (db *pebbledb.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("pebble panicked: %v", p)
		}
	}()
	return pebbledb.Open(dir, &pebbledb.Options{
		FS:           in.fs,
		Logger:       pebbleLogger{in},
		ReadOnly:     readOnly,
		MemTableSize: 2 << 20,
		MaxOpenFiles: 64,
		EventListener: &pebbledb.EventListener{
			BackgroundError: func(err error) { in.s.background(err) },
			DiskSlow: func(info pebbledb.DiskSlowInfo) {
				in.s.limit.Log(in.s.log, slog.LevelWarn, "diskslow", "session store: disk slow",
					"path", filepath.Base(info.Path), "duration", info.Duration.String())
			},
		},
	})
}

// write applies ops to the store, synced, and waits for it (at most storeTimeout). While the
// store is degraded it does nothing: a reopened store is rewritten from memory.
func (s *store) write(ops ...kv) {
	if len(ops) == 0 {
		return
	}
	s.mu.Lock()
	in := s.cur
	s.mu.Unlock()
	if in == nil {
		return
	}
	r := &request{ops: ops, done: make(chan error, 1)}
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case in.reqs <- r:
	case <-in.dead:
		return
	case <-t.C: // the writer is far behind: this write is lost, so rewrite the store once it catches up
		in.dirty.Store(true)
		in.checkStuck()
		return
	}
	select {
	case <-r.done:
	case <-in.dead:
	case <-t.C: // the write stays queued; the publisher goes on
		in.checkStuck()
	}
}

// checkStuck abandons an instance whose writer has spent more than the timeout in one
// commit (a hung disk): a busy one (catching up, or rewriting a large state) is left alone.
func (in *instance) checkStuck() {
	since := in.busySince.Load()
	if since != 0 && !in.rewriting.Load() && time.Since(time.Unix(0, since)) > in.s.timeout {
		in.abandon(fmt.Errorf("a write has not completed in %s", in.s.timeout))
	}
}

// failed records an error of the store.
func (s *store) failed(err error) {
	s.errors.Add(1)
	s.mu.Lock()
	s.lastErr = logx.Err(err)
	s.mu.Unlock()
}

// background records an error pebble had in the background (a flush or compaction).
func (s *store) background(err error) {
	s.failed(err)
	s.limit.Log(s.log, slog.LevelWarn, "background", "session store: background error", "err", logx.Err(err))
}

// supervise reopens the store after a failure, with backoff, until it is closed.
func (s *store) supervise() {
	defer close(s.done)
	bo := backoff.Backoff{Min: s.retry, Max: time.Minute}
	for {
		s.mu.Lock()
		degraded := s.cur == nil
		s.mu.Unlock()
		if !degraded {
			select {
			case <-s.wake:
				continue
			case <-s.ctx.Done():
				return
			}
		}
		if bo.Wait(s.ctx) != nil {
			return
		}
		in, err := s.open(false)
		if err != nil {
			s.failed(err)
			s.limit.Log(s.log, slog.LevelWarn, "reopen", "session store: still cannot open", "err", logx.Err(err),
				"retry_in_about", backoff.Delay(s.retry, bo.Failures(), time.Minute).String())
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			in.abandon(nil)
			return
		}
		s.cur = in // publishers queue on it from now; its writer rewrites the state first
		s.mu.Unlock()
		bo.Reset()
		go in.run(true)
	}
}

// close stops the supervisor and closes the current instance, waiting at most storeTimeout.
func (s *store) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	in, started := s.cur, s.started
	s.cur = nil
	s.mu.Unlock()
	s.cancel()
	if !started {
		if s.initial != nil {
			s.initialDone()
			s.initial = nil
		}
	} else {
		select {
		case <-s.done:
		case <-time.After(s.timeout):
		}
	}
	var err error
	if in != nil {
		err = in.stop()
	}
	s.closing.Wait() // abandoned instances: closed, or their lock released after the timeout
	return err
}

func (s *store) stats() StoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := StoreStats{State: "ok", Errors: s.errors.Load(), Recoveries: s.recoveries.Load(), LastError: s.lastErr}
	if s.cur == nil {
		st.State = "degraded"
	}
	return st
}

// instance is one open pebble database and its writer.
type instance struct {
	s         *store
	db        *pebbledb.DB
	fs        *fenceFS
	reqs      chan *request
	dead      chan struct{} // closed when the instance is abandoned or stopped
	deadOnce  sync.Once
	poison    atomic.Pointer[string] // set by pebble's Fatalf
	poisoned  chan struct{}          // closed by pebble's Fatalf
	busySince atomic.Int64           // unix nanoseconds the current commit began, 0 when idle
	rewriting atomic.Bool
	dirty     atomic.Bool // a write was lost: rewrite the whole state
	stopped   chan error
}

type request struct {
	ops  []kv
	done chan error
}

// run is the instance's writer: it commits queued requests in synced batches (a group
// commit). With rewrite it first replaces the store's contents with the broker's state.
func (in *instance) run(rewrite bool) {
	if rewrite {
		if err := in.rewrite(); err != nil {
			in.abandon(fmt.Errorf("rewrite after reopening: %w", err))
			return
		}
		in.s.recoveries.Add(1)
		in.s.log.Info("session store: reopened and rewritten from memory; sessions are on disk again", "dir", in.s.dir)
	}
	for {
		select {
		case r := <-in.reqs:
			batch := []*request{r}
		more:
			for len(batch) < 128 {
				select {
				case r := <-in.reqs:
					batch = append(batch, r)
				default:
					break more
				}
			}
			in.busySince.Store(time.Now().UnixNano())
			err := in.commit(batch)
			in.busySince.Store(0)
			for _, r := range batch {
				r.done <- err
			}
			if err == nil && in.dirty.Swap(false) {
				err = in.rewrite()
			}
			if err != nil {
				in.abandon(err)
				return
			}
		case <-in.poisoned: // a fatal error in one of pebble's own goroutines
			in.abandon(errors.New(*in.poison.Load()))
			return
		case <-in.dead:
			return
		}
	}
}

func (in *instance) commit(batch []*request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("pebble panicked: %v", p)
		}
	}()
	if p := in.poison.Load(); p != nil {
		return errors.New(*p)
	}
	b := in.db.NewBatch()
	defer b.Close()
	for _, r := range batch {
		for _, op := range r.ops {
			if op.value == nil {
				err = b.Delete([]byte(op.key), nil)
			} else {
				err = b.Set([]byte(op.key), op.value, nil)
			}
			if err != nil {
				return err
			}
		}
	}
	if err := b.Commit(pebbledb.Sync); err != nil {
		return err
	}
	if p := in.poison.Load(); p != nil {
		return errors.New(*p)
	}
	return nil
}

// rewrite replaces the store's contents with the broker's current state. When the contents
// were never loaded (unreadable at start), it writes over them instead of deleting them, so
// that a later start still finds the old sessions.
func (in *instance) rewrite() (err error) {
	in.rewriting.Store(true)
	defer in.rewriting.Store(false)
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("pebble panicked: %v", p)
		}
	}()
	b := in.db.NewBatch()
	defer b.Close()
	in.s.mu.Lock()
	loaded := in.s.loaded
	in.s.mu.Unlock()
	if loaded {
		if err := b.DeleteRange([]byte{0}, []byte{0xff}, nil); err != nil {
			return err
		}
	}
	for _, op := range in.s.snapshot() {
		if op.value != nil {
			if err := b.Set([]byte(op.key), op.value, nil); err != nil {
				return err
			}
		}
	}
	if err := b.Commit(pebbledb.Sync); err != nil {
		return err
	}
	if p := in.poison.Load(); p != nil {
		return errors.New(*p)
	}
	in.s.mu.Lock()
	in.s.loaded = true
	in.s.mu.Unlock()
	return nil
}

// abandon drops a failed instance: the broker goes on in memory, the instance's file system
// refuses further writes, pebble is closed in the background, and the supervisor is woken.
// With a nil err it is a quiet close (a read-only instance after loading).
func (in *instance) abandon(err error) {
	first := false
	in.deadOnce.Do(func() { first = true; close(in.dead) })
	if !first {
		return
	}
	if err != nil {
		s := in.s
		s.failed(err)
		s.mu.Lock()
		if s.cur == in {
			s.cur = nil
		}
		s.mu.Unlock()
		s.log.Error("session store failed; sessions are kept in memory only until it can be reopened",
			"dir", s.dir, "err", logx.Err(err))
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	in.fs.fence()
	in.s.closing.Add(1)
	go in.closeDB()
}

// closeDB closes pebble, and releases its lock file if Close does not return in time (the
// instance is fenced: it can no longer write).
func (in *instance) closeDB() {
	defer in.s.closing.Done()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("pebble panicked on close: %v", p)
			}
		}()
		done <- in.db.Close()
	}()
	select {
	case err := <-done:
		in.fs.releaseLocks()
		if in.stopped != nil {
			in.stopped <- err
		}
	case <-time.After(in.s.timeout):
		in.fs.fence() // a stopped instance is not fenced yet: its pebble must not write once the lock is gone
		in.fs.releaseLocks()
		if in.stopped != nil {
			in.stopped <- errors.New("session store: close timed out")
		}
	}
}

// stop closes a healthy instance at broker shutdown, after its queued writes.
func (in *instance) stop() error {
	in.stopped = make(chan error, 1)
	in.deadOnce.Do(func() { close(in.dead) })
	in.s.closing.Add(1)
	go in.closeDB()
	return <-in.stopped
}

// pebbleLogger sends pebble's chatter (WAL replays, compactions) to debug. Fatalf does not
// panic (in one of pebble's goroutines that would end the process): it marks the instance
// poisoned, and its writer abandons it and logs the error.
type pebbleLogger struct{ in *instance }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.in.s.log.Debug("session store: " + logx.Value(fmt.Sprintf(format, args...)))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := logx.Value(fmt.Sprintf(format, args...))
	if p.in.poison.CompareAndSwap(nil, &msg) {
		close(p.in.poisoned)
	}
	p.in.s.log.Debug("session store: pebble fatal error", "err", msg)
}

// fenceFS is the file system of one pebble instance: once fenced, every write fails, so an
// abandoned instance (whose goroutines may live on) can never touch the directory again.
// It also keeps the instance's lock file, to release it when pebble cannot.
type fenceFS struct {
	*errorfs.FS
	fenced atomic.Bool

	mu    sync.Mutex
	locks []*onceCloser
}

func newFenceFS(base storeFS) *fenceFS {
	f := &fenceFS{}
	f.FS = errorfs.Wrap(base, errorfs.InjectorFunc(func(op errorfs.Op, _ string) error {
		if f.fenced.Load() && op.OpKind() == errorfs.OpKindWrite {
			return errFenced
		}
		return nil
	}))
	return f
}

func (f *fenceFS) fence() { f.fenced.Store(true) }

func (f *fenceFS) Lock(name string) (io.Closer, error) {
	c, err := f.FS.Lock(name)
	if err != nil {
		return nil, err
	}
	oc := &onceCloser{c: c}
	f.mu.Lock()
	f.locks = append(f.locks, oc)
	f.mu.Unlock()
	return oc, nil
}

func (f *fenceFS) releaseLocks() {
	f.mu.Lock()
	locks := f.locks
	f.locks = nil
	f.mu.Unlock()
	for _, l := range locks {
		_ = l.Close()
	}
}

type onceCloser struct {
	once sync.Once
	c    io.Closer
	err  error
}

func (o *onceCloser) Close() error {
	o.once.Do(func() { o.err = o.c.Close() })
	return o.err
}
