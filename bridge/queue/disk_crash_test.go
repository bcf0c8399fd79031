package queue

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smallDisk stands in for a file system of capacity bytes where no tmpfs can be mounted: the
// segment files it created share the capacity while they exist (a deleted file gives its
// space back), and a write past it is torn half-way and fails with ENOSPC, as the kernel may
// leave it.
type smallDisk struct {
	capacity int64
	paths    []string
}

func (fs *smallDisk) create(path string) (segFile, error) {
	f, err := createSegment(path)
	if err != nil {
		return nil, err
	}
	fs.paths = append(fs.paths, path)
	return diskFile{f.(*os.File), fs}, nil
}

func (fs *smallDisk) used() int64 {
	var n int64
	for _, p := range fs.paths {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

type diskFile struct {
	*os.File
	fs *smallDisk
}

func (f diskFile) Write(p []byte) (int, error) {
	if f.fs.used()+int64(len(p)) <= f.fs.capacity {
		return f.File.Write(p)
	}
	n, _ := f.File.Write(p[:len(p)/2])
	return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
}

// TestDiskFullDropsOldest fills a small disk far past its size: no Add fails, the oldest
// segments are freed (counted as DropDiskFull) and the newest records are kept, a contiguous
// run up to the last one added, before and after reopening.
func TestDiskFullDropsOldest(t *testing.T) {
	dir := t.TempDir()
	per := int64(RecordOverhead + len(rec(0)))
	fs := &smallDisk{capacity: 100 * per}
	log, lb := newLog()
	q, err := openDisk(dir, Options{SegmentSize: 20 * per}, log, fs.create)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	const n = 1000
	addRange(t, q, 0, n/2)
	tx, _ := q.Begin(30) // handed out, not acked: a full disk may drop them too
	addRange(t, q, n/2, n)
	q.Ack(tx) // their segment is gone: nothing happens
	st := q.Stats()
	dropped := st.Dropped[DropDiskFull]
	if dropped == 0 || dropped+uint64(st.Records) != n || st.WriteErrors != 0 {
		t.Fatalf("stats %+v: want the oldest dropped for a full disk, %d in all", st, n)
	}
	if !strings.Contains(lb.String(), "disk full") {
		t.Errorf("no log line for the dropped segment: %s", lb.String())
	}
	if fs.used() > fs.capacity {
		t.Fatalf("%d bytes used on a disk of %d", fs.used(), fs.capacity)
	}
	q.Close()
	q2 := mustOpen(t, dir, Options{}, nil)
	got := drain(t, q2)
	checkRun(t, got, int(dropped), n)
	t.Logf("%d records added to a disk holding about %d: the newest %d kept, %d oldest dropped", n, fs.capacity/per, len(got), dropped)
}

// TestDiskFullOfOtherFiles: when even freeing all of its own segments leaves no room, the
// queue refuses the Add (counted) and works again once there is space.
func TestDiskFullOfOtherFiles(t *testing.T) {
	dir := t.TempDir()
	fs := &smallDisk{capacity: 1 << 30}
	q, err := openDisk(dir, Options{SegmentSize: 1 << 20}, slog.New(slog.DiscardHandler), fs.create)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	addRange(t, q, 0, 50)
	fs.capacity = 0 // someone else filled the disk
	for i := 50; i < 60; i++ {
		if err := q.Add(rec(i), rec(i)); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Add on a disk full of other files: %v, want ENOSPC", err)
		}
	}
	st := q.Stats()
	if st.WriteErrors != 10 || st.Records != 0 || st.Dropped[DropDiskFull] != 50 {
		t.Fatalf("stats %+v: the queue's own records go first, then Adds are refused", st)
	}
	fs.capacity = 1 << 30 // space is back
	addRange(t, q, 60, 70)
	q.Close()
	q2 := mustOpen(t, dir, Options{}, nil)
	checkRun(t, drain(t, q2), 60, 70)
}

// TestDiskFullTmpfs fills a real 256 KiB tmpfs far past its size: no Add fails, the oldest
// segments are freed and the newest records kept. It needs root (mount); it is skipped
// otherwise (TestDiskFullDropsOldest covers the same with a simulated disk).
func TestDiskFullTmpfs(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v); TestDiskFullDropsOldest covers a full disk", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	qdir := filepath.Join(dir, "queue")
	q := mustOpen(t, qdir, Options{SegmentSize: 32 << 10, SyncInterval: 5 * time.Millisecond}, nil)
	const n = 50000 // about 1.2 MB of records
	for i := range n {
		if err := q.Add(rec(i)); err != nil {
			t.Fatalf("Add(%d) on a full tmpfs: %v", i, err)
		}
	}
	st := q.Stats()
	dropped := st.Dropped[DropDiskFull]
	if dropped == 0 || dropped+uint64(st.Records) != n {
		t.Fatalf("stats %+v: want the oldest dropped for a full disk", st)
	}
	if err := q.Close(); err != nil {
		t.Logf("Close on a full disk: %v", err)
	}
	q = mustOpen(t, qdir, Options{}, nil)
	got := drain(t, q)
	checkRun(t, got, int(dropped), n)
	t.Logf("%d records on a 256 KiB tmpfs: the newest %d kept, %d oldest dropped", n, len(got), dropped)
}

const childEnv = "WELLGATE_QUEUE_CRASH_CHILD"

// TestDiskKilledWhileAdding runs a child process that adds records (and acks some) until it
// is SIGKILLed; every record whose Add returned must be there after reopening.
func TestDiskKilledWhileAdding(t *testing.T) {
	if dir := os.Getenv(childEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDiskKilledWhileAdding$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	last := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if i, err := strconv.Atoi(string(bytes.TrimSpace(sc.Bytes()))); err == nil {
			last = i
		}
		if last >= 20000 {
			break
		}
	}
	if last < 20000 {
		t.Fatalf("child stopped early at %d", last)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	q := mustOpen(t, dir, Options{}, nil)
	got := drain(t, q)
	if len(got) == 0 || got[0] > 1000 {
		t.Fatalf("after SIGKILL the queue starts at %v, want at most 1000 (the acked part)", head(got))
	}
	checkRun(t, got, got[0], got[0]+len(got))
	if got[len(got)-1] < last {
		t.Fatalf("record %d was added before the kill but is missing (last %d)", last, got[len(got)-1])
	}
}

func crashChild(dir string) {
	q, err := OpenDisk(dir, Options{SegmentSize: 64 << 10, SyncInterval: 2 * time.Millisecond}, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		if err := q.Add(rec(i)); err != nil {
			fmt.Println("add:", err)
			os.Exit(2)
		}
		if i == 2000 {
			tx, _ := q.Begin(1000)
			q.Ack(tx)
		}
		fmt.Fprintln(w, i)
		if i%100 == 0 {
			w.Flush()
		}
	}
}
