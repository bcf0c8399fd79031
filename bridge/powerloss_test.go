package bridge

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wellgate/wellgate/internal/peers"
)

const childDirEnv = "WELLGATE_BRIDGE_CHILD_DIR"

// TestPowerLoss runs the gateway's bridge in a child process during an outage and SIGKILLs
// it while it queues; a new bridge on the same data dir then delivers every sample the child
// had queued, as historical values in order.
func TestPowerLoss(t *testing.T) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		powerLossChild(t, dir)
		return
	}
	peers.RequireMosquitto(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPowerLoss$", "-test.v")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir, "WELLGATE_BRIDGE_CHILD_ADDR="+peers.FreePort(t))
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
	for last < 2000 && sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "queued "); ok {
			last, _ = strconv.Atoi(v)
		}
	}
	if last < 2000 {
		t.Fatalf("child stopped at %d", last)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	m := peers.StartMosquitto(t)
	col := newCollector(t, m.Addr)
	h := newHarness(t, dir, testOptions(m.URL()), nil).start()
	h.waitState(StateOnline, 10*time.Second)
	h.waitFor(20*time.Second, "the backlog", func() bool { return allArrived(col.all(), last+1) })
	live, hist := checkAllArrived(t, h, col.all(), last+1)
	if live != 0 {
		t.Fatalf("%d values arrived live, want all historical", live)
	}
	t.Logf("%d samples queued before SIGKILL arrived, %d historical values in all", last+1, hist)
}

// powerLossChild queues samples forever (its upstream port has no listener) and prints the
// number of each sample once the queue has it. It produces in runs of 20 and waits for each
// run to be queued, so that a run costs one poll, not one per sample.
func powerLossChild(t *testing.T, dir string) {
	h := newHarness(t, dir, testOptions("tcp://"+os.Getenv("WELLGATE_BRIDGE_CHILD_ADDR")), nil).start()
	w := bufio.NewWriter(os.Stdout)
	const run = 20
	for i := 0; ; i += run {
		h.produce(run)
		for h.b.Status().Queued < uint64(i+run) {
			time.Sleep(100 * time.Microsecond) // polling the child's own progress
		}
		for k := i; k < i+run; k++ {
			fmt.Fprintf(w, "queued %d\n", k)
		}
		w.Flush()
	}
}
