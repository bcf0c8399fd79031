package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wellgate/wellgate/internal/procfs"
)

// proc is a child process (the gateway, the simulator, mosquitto) whose output goes to a log
// file in the run's folder, so that a failure can show it.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when it has exited
}

// startProc starts bin with args; stdout, when not nil, receives its standard output instead
// of the log file.
func startProc(dir, name string, stdout io.Writer, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); lf.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace for the exit, then kills it. It may be called
// more than once.
func (p *proc) stop(grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// kill stops it at once, as a crash or a pulled cable would.
func (p *proc) kill() {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// tail is the end of its log, for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// waitLine reads r until a line starting with prefix, and returns it; the rest of r is
// discarded in the background so that the writer never blocks.
func waitLine(ctx context.Context, r io.Reader, prefix string) (string, error) {
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		sent := false
		for sc.Scan() {
			if !sent && strings.HasPrefix(sc.Text(), prefix) {
				found <- sc.Text()
				sent = true
			}
		}
		close(found)
	}()
	select {
	case l, ok := <-found:
		if !ok {
			return "", fmt.Errorf("exited without a %q line", prefix)
		}
		return l, nil
	case <-ctx.Done():
		return "", fmt.Errorf("no %q line: %w", prefix, ctx.Err())
	}
}

// cpuTime is the user+system CPU time pid has used (/proc/PID/stat utime+stime).
func cpuTime(pid int) time.Duration { return procfs.CPUTime(pid) }

// machineBusy is the CPU time every core of the machine has spent busy (/proc/stat's cpu line:
// user, nice, system, irq, softirq, steal), so that a window can say how much went to processes
// other than the measured ones.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// statusKB is a kB field of /proc/PID/status ("VmRSS", "RssAnon", "VmHWM"); 0 if absent.
func statusKB(pid int, field string) int {
	kb, _ := procfs.StatusKB(pid, field)
	return kb
}

// freePort is a loopback host:port that was free a moment ago, below the kernel's ephemeral
// range: a port that listening on :0 hands out (as the simulator's devices and every outgoing
// connection get theirs) would be free again once closed, and could be taken before the
// gateway, mosquitto or the page listens on it.
func freePort() (string, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	if low > 11000 {
		for range 100 {
			port := 10000 + rand.IntN(low-11000)
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err == nil {
				ln.Close()
				return ln.Addr().String(), nil
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// dirBytes is the disk usage of a folder's files (allocated blocks, as du counts them).
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			} else {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// waitDial waits until addr accepts TCP connections or p exits.
func waitDial(addr string, p *proc, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return errors.New(p.name + " exited:\n" + p.tail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %v", p.name, addr, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
