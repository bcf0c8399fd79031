package broker

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/cockroachdb/pebble/vfs/errorfs"
)

// disk is a data dir that a test can fill up and free again: a small tmpfs filled with a
// ballast file when the test may mount one (root), else the real disk under a file system
// that answers ENOSPC to every write while "full".
type disk struct {
	dir     string
	fs      storeFS // nil on tmpfs: the real file system
	full    atomic.Bool
	ballast string
	kind    string
}

func newDisk(t *testing.T, tmpfs bool) *disk {
	t.Helper()
	d := &disk{dir: filepath.Join(t.TempDir(), "data")}
	if err := os.Mkdir(d.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var out []byte
	err := errors.New("not asked for")
	if tmpfs {
		out, err = exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", d.dir).CombinedOutput()
	}
	if err == nil {
		t.Cleanup(func() {
			if out, err := exec.Command("umount", d.dir).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", d.dir, err, out)
			}
		})
		d.kind, d.ballast = "a 16 MiB tmpfs", filepath.Join(d.dir, "ballast")
		return d
	}
	if tmpfs {
		t.Skipf("cannot mount a tmpfs (%v: %s); the injected-ENOSPC case runs instead", err, out)
	}
	d.kind = "injected ENOSPC"
	d.fs = errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op, path string) error {
		// Removing files and taking the (existing) lock file need no space.
		if d.full.Load() && op.OpKind() == errorfs.OpKindWrite && op != errorfs.OpRemove && op != errorfs.OpRemoveAll && op != errorfs.OpLock {
			return &os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
		}
		return nil
	}))
	return d
}

// fill leaves no space on the disk.
func (d *disk) fill(t *testing.T) {
	t.Helper()
	d.full.Store(true)
	if d.fs != nil {
		return
	}
	f, err := os.Create(d.ballast)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

func (d *disk) free(t *testing.T) {
	t.Helper()
	d.full.Store(false)
	if d.fs == nil {
		if err := os.Remove(d.ballast); err != nil {
			t.Fatal(err)
		}
	}
}

// A full disk on the data dir never stops the broker from serving or from starting: the
// session store degrades to memory (logged, counted) and, once space returns, is reopened and
// rewritten from memory, so that the messages published meanwhile survive a later restart.
// It runs real pebble on a real full tmpfs when the test may mount one (as root), and on an
// injected ENOSPC always.
func TestFullDiskDegradesAndRecovers(t *testing.T) {
	t.Run("tmpfs", func(t *testing.T) { fullDisk(t, newDisk(t, true)) })
	t.Run("injected", func(t *testing.T) { fullDisk(t, newDisk(t, false)) })
}

func fullDisk(t *testing.T, d *disk) {
	logs := &logBuffer{}
	opts := Options{DataDir: d.dir, storeFS: d.fs, storeRetry: 20 * time.Millisecond, storeTimeout: time.Second,
		Logger: logs.logger()}
	b := start(t, opts)
	url := "tcp://" + b.Addr().String()
	hist := dial(t, pahoOpts(url, "historian", false))
	subscribe(t, hist, "tags/#", 1, nil)
	hist.Disconnect(50)
	eventually(t, 5*time.Second, "the historian away", func() bool { return b.Stats().Sessions == 1 })
	panel := newInbox()
	subscribe(t, dial(t, pahoOpts(url, "panel", true)), "tags/#", 0, panel.handle)

	d.fill(t)
	payload := make([]byte, 4<<10)
	n, slowest := 0, time.Duration(0)
	publish := func() {
		copy(payload, strconv.Itoa(n)+" ")
		began := time.Now()
		if err := b.Publish("tags/level", 1, false, payload); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(began))
		n++
	}
	for b.Stats().Store.State != "degraded" {
		if n == 3000 {
			t.Fatalf("store still %+v after %d publishes (%d MiB) on a full disk", b.Stats().Store, n, n*len(payload)>>20)
		}
		publish()
	}
	degradedAt := n
	for range 100 {
		publish()
	}
	if slowest > 2*time.Second {
		t.Fatalf("a publish took %s on the full disk", slowest)
	}
	panel.wait(t, n, 20*time.Second) // the broker served throughout
	st := b.Stats()
	if st.Store.Errors == 0 || st.Store.LastError == "" || st.QueuedMessages != n {
		t.Fatalf("store %+v, %d of %d queued", st.Store, st.QueuedMessages, n)
	}
	if len(logs.lines("level=ERROR", "session store failed")) != 1 {
		t.Fatalf("the failure is not logged once:\n%s", logs)
	}
	t.Logf("degraded after %d publishes (%s); slowest publish %s", degradedAt, st.Store.LastError, slowest)

	d.free(t)
	eventually(t, 30*time.Second, "the store reopened", func() bool {
		st := b.Stats().Store
		return st.State == "ok" && st.Recoveries == 1
	})
	for range 50 {
		publish()
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Starting on a full disk: pebble cannot replay its WAL read-write, the sessions are read
	// read-only, and the broker serves; once space returns the store is written again.
	d.fill(t)
	b2 := start(t, opts)
	st = b2.Stats()
	if st.Store.State != "degraded" || st.Sessions != 1 || st.QueuedMessages != n {
		t.Fatalf("started on a full disk: store %+v, %d sessions, %d of %d queued", st.Store, st.Sessions, st.QueuedMessages, n)
	}
	d.free(t)
	eventually(t, 30*time.Second, "the store reopened", func() bool { return b2.Stats().Store.State == "ok" })
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}

	b3 := start(t, opts)
	in := newInbox()
	dial(t, pahoOpts("tcp://"+b3.Addr().String(), "historian", false).SetDefaultPublishHandler(in.handle))
	got := in.wait(t, n, 30*time.Second)
	for i, m := range got {
		if want := strconv.Itoa(i) + " "; string(m.Payload()[:len(want)]) != want {
			t.Fatalf("message %d starts %q: lost or out of order across the full disk", i, m.Payload()[:12])
		}
	}
	t.Logf("%s: all %d messages (%d published while degraded) delivered in order", d.kind, n, n-degradedAt)
}

// A store that can be neither opened nor read (here: a file where its directory should be)
// is reported, and the broker serves without it.
func TestUnreadableStoreStillStarts(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "broker"), []byte("not a pebble directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	b := start(t, Options{DataDir: dir, storeRetry: time.Hour, Logger: logs.logger()})
	if st := b.Stats().Store; st.State != "degraded" || st.Errors == 0 {
		t.Fatalf("store %+v", st)
	}
	if len(logs.lines("level=ERROR", "cannot read it either")) != 1 {
		t.Fatalf("not reported:\n%s", logs)
	}
	in := newInbox()
	subscribe(t, dial(t, pahoOpts("tcp://"+b.Addr().String(), "c", true)), "t", 1, in.handle)
	if err := b.Publish("t", 1, false, []byte("served")); err != nil {
		t.Fatal(err)
	}
	in.wait(t, 1, 10*time.Second)
	began := time.Now()
	if err := b.Close(); err != nil || time.Since(began) > 5*time.Second {
		t.Fatalf("close: %v after %s", err, time.Since(began))
	}
}

// A disk whose writes hang (a dying SD card) stalls a publisher once, for the store timeout:
// the instance is abandoned, the broker goes on in memory, and the store comes back when the
// disk does.
func TestHungDiskDoesNotStallPublishers(t *testing.T) {
	var hang atomic.Bool
	release := make(chan struct{})
	fs := errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op, _ string) error {
		if hang.Load() && op == errorfs.OpFileWrite { // pebble syncs the WAL with SyncData, which errorfs does not see
			<-release
		}
		return nil
	}))
	b := start(t, Options{DataDir: t.TempDir(), storeFS: fs, storeTimeout: 200 * time.Millisecond, storeRetry: 20 * time.Millisecond})
	url := "tcp://" + b.Addr().String()
	c := dial(t, pahoOpts(url, "historian", false))
	subscribe(t, c, "tags/#", 1, nil)
	c.Disconnect(50)
	eventually(t, 5*time.Second, "away", func() bool { return b.Stats().Sessions == 1 })

	hang.Store(true)
	var total time.Duration
	for i := range 50 {
		began := time.Now()
		if err := b.Publish("tags/level", 1, false, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		total += time.Since(began)
	}
	if total > 2*time.Second {
		t.Fatalf("50 publishes took %s on a hung disk", total)
	}
	if st := b.Stats().Store; st.State != "degraded" {
		t.Fatalf("store %+v on a hung disk", st)
	}
	hang.Store(false)
	close(release)
	eventually(t, 10*time.Second, "the store back", func() bool { return b.Stats().Store.State == "ok" })
	in := newInbox()
	dial(t, pahoOpts(url, "historian", false).SetDefaultPublishHandler(in.handle))
	checkSequence(t, payloads(in.wait(t, 50, 10*time.Second)), 50)
}
