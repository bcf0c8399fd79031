package opcua

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
)

// childServerEnv, when set to host:port, makes the test binary run a test server there
// instead of the tests (see TestMain): a process the tests can kill.
const childServerEnv = "WELLGATE_OPCUA_CHILD_SERVER"

// runChildServer serves variable "counter" (Int32, counting every 20ms) until killed.
func runChildServer(addr string) int {
	ts, err := newTestServer(addr, serverLimits{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child server:", err)
		return 1
	}
	ts.add("counter", ua.TypeIDInt32, int32(0), false)
	fmt.Println("ready")
	for i := int32(1); ; i++ {
		time.Sleep(20 * time.Millisecond) // the server's own clock: a value that changes
		ts.set("counter", i, time.Now())
	}
}

// childServer is a test server in a child process.
type childServer struct {
	t    testing.TB
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startChild starts the child server on addr and waits until it serves.
func startChild(t testing.TB, addr string) *childServer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childServerEnv+"="+addr)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &childServer{t: t, addr: addr, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	t.Cleanup(c.kill)
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("child server exited before it was ready")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("child server not ready within 60s")
	}
	return c
}

// kill SIGKILLs the child and waits for it.
func (c *childServer) kill() {
	if c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-c.done
}
