package sparkplug

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// ErrBdSeqCorrupt is wrapped by the error NewBdSeqStore returns, together with a usable store,
// when the file exists but does not hold a number 0 … 255. The store then starts over at 0
// (a host application sees an unexpected bdSeq once and accepts the new NBIRTH); the caller
// should log the error as a warning and carry on.
var ErrBdSeqCorrupt = errors.New("bdSeq file corrupt, starting over at 0")

// BdSeqStore hands out the birth/death sequence number, one per MQTT CONNECT sent, and persists
// the last one used so that it survives restarts. Safe for concurrent use.
//
// The file holds the last value handed out as decimal text. A missing file means none was: the
// first Next returns 0.
type BdSeqStore struct {
	mu   sync.Mutex
	path string
	cur  uint64 // last value handed out (0 if none)
	next uint64 // value the next Next returns
}

// NewBdSeqStore opens the store kept in the file at path (its directory must exist). See
// ErrBdSeqCorrupt for the one case where it returns both a store and an error.
func NewBdSeqStore(path string) (*BdSeqStore, error) {
	s := &BdSeqStore{path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("read bdSeq: %w", err)
	}
	v, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 8)
	if perr != nil {
		return s, fmt.Errorf("%s: %w: %w", path, ErrBdSeqCorrupt, perr)
	}
	s.cur, s.next = v, (v+1)%256
	return s, nil
}

// Next returns the bdSeq for a new connection: one more than the last (255 wraps to 0). The
// value is on disk (written to a temporary file, fsynced, renamed over the old one, directory
// fsynced) before Next returns it; on error nothing changes. It is Commit(Peek()).
func (s *BdSeqStore) Next() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.next
	if err := s.commitLocked(v); err != nil {
		return 0, err
	}
	return v, nil
}

// Peek returns the bdSeq the next connection will use, without spending it: a connection
// attempt that never sends its CONNECT (a refused dial, a failed TLS handshake) must not move
// the sequence on (docs/sparkplug.md [topics-nbirth-bdseq-increment]). The error is always
// nil; it is there for sources that must read a disk.
func (s *BdSeqStore) Peek() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next, nil
}

// Commit records v (a value Peek returned) as the last bdSeq used, on disk as Next does. Call
// it right before the CONNECT that carries v in its will goes out.
func (s *BdSeqStore) Commit(v uint64) error {
	if v > 255 {
		return fmt.Errorf("commit bdSeq %d: above 255", v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commitLocked(v)
}

func (s *BdSeqStore) commitLocked(v uint64) error {
	if err := writeFileAtomic(s.path, []byte(strconv.FormatUint(v, 10)+"\n")); err != nil {
		return fmt.Errorf("persist bdSeq: %w", err)
	}
	s.cur, s.next = v, (v+1)%256
	return nil
}

// Current returns the last value Next returned (or the one found on disk; 0 if none).
func (s *BdSeqStore) Current() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
