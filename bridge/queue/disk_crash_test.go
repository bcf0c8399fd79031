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
	"syscall"
	"testing"
	"time"
)

// fullDisk wraps a segment file and fails writes with ENOSPC (after writing part of them)
// while the shared budget is exhausted. It stands in for a full disk where no tmpfs can be
// mounted.
type fullDisk struct {
	*os.File
	budget *int64
}

func (f fullDisk) Write(p []byte) (int, error) {
	if int64(len(p)) <= *f.budget {
		*f.budget -= int64(len(p))
		return f.File.Write(p)
	}
	n, _ := f.File.Write(p[:len(p)/2]) // a torn write, as the kernel may leave
	return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
}

func TestDiskFullWriter(t *testing.T) {
	dir := t.TempDir()
	budget := int64(1 << 30)
	create := func(path string) (segFile, error) {
		f, err := createSegment(path)
		if err != nil {
			return nil, err
		}
		return fullDisk{f.(*os.File), &budget}, nil
	}
	q, err := openDisk(dir, Options{SegmentSize: 1 << 20}, slog.New(slog.DiscardHandler), create)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	addRange(t, q, 0, 50)
	budget = 0
	for i := 50; i < 60; i++ {
		if err := q.Add(rec(i), rec(i)); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Add on a full disk: %v, want ENOSPC", err)
		}
	}
	if q.Len() != 50 || q.Stats().WriteErrors != 10 {
		t.Fatalf("Len %d, stats %+v", q.Len(), q.Stats())
	}
	budget = 1 << 30 // space is back
	addRange(t, q, 60, 70)
	q.Close()
	q2 := mustOpen(t, dir, Options{}, nil)
	got := drain(t, q2)
	checkRun(t, got[:50], 0, 50)
	checkRun(t, got[50:], 60, 70)
}

// TestDiskFullTmpfs fills a real 256 KiB tmpfs. It needs root (mount); it is skipped otherwise.
func TestDiskFullTmpfs(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v); TestDiskFullWriter covers ENOSPC", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	qdir := filepath.Join(dir, "queue")
	q := mustOpen(t, qdir, Options{SegmentSize: 32 << 10, SyncInterval: 5 * time.Millisecond}, nil)
	n := 0
	var err error
	for ; n < 1e6; n++ {
		if err = q.Add(rec(n)); err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the disk ended with %v after %d records, want ENOSPC", err, n)
	}
	if err := q.Add(rec(n)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("second Add on a full disk: %v", err)
	}
	// Draining frees whole segments; then adding works again.
	tx, _ := q.Begin(n / 2)
	if err := q.Ack(tx); err != nil {
		t.Fatal(err)
	}
	start := tx.Len()
	m := n
	for ; m < n+100; m++ {
		if err := q.Add(rec(m)); err != nil {
			t.Fatalf("Add after draining: %v", err)
		}
	}
	if err := q.Close(); err != nil {
		t.Logf("Close on a full disk: %v", err)
	}
	q = mustOpen(t, qdir, Options{}, nil)
	got := drain(t, q)
	checkRun(t, got[len(got)-100:], n, m)
	checkRun(t, got[:len(got)-100], got[0], n)
	if got[0] > start {
		t.Fatalf("records before %d lost", got[0])
	}
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
