package procfs

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func TestSelf(t *testing.T) {
	pid := os.Getpid()
	start := SelfCPUTime()
	for end := time.Now().Add(60 * time.Millisecond); time.Now().Before(end); {
		runtime.Gosched() // spin: CPU time must grow
	}
	if d := SelfCPUTime() - start; d <= 0 {
		t.Errorf("SelfCPUTime grew by %v over 60 ms of spinning", d)
	}
	if c := CPUTime(pid); c <= 0 {
		t.Errorf("CPUTime(self) = %v, want > 0 after spinning", c)
	}
	if kb, ok := StatusKB(pid, "VmRSS"); !ok || kb <= 0 {
		t.Errorf("StatusKB(VmRSS) = %d, %v", kb, ok)
	}
	if v, ok := Status(pid, "Name"); !ok || v == "" {
		t.Errorf("Status(Name) = %q, %v", v, ok)
	}
	if _, ok := StatusKB(pid, "NoSuchField"); ok {
		t.Error("StatusKB found a field that is not there")
	}
	if c := CPUTime(-1); c != 0 {
		t.Errorf("CPUTime of no process = %v, want 0", c)
	}
	if _, ok := Status(-1, "VmRSS"); ok {
		t.Error("Status of no process reported a field")
	}
}
