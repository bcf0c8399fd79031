// Package procfs reads a process's CPU time and memory as Linux shows them in /proc, for the
// load tests and `make bench`: one reading of each, instead of one per measuring package.
package procfs

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUTime is the user+system CPU time process pid has used (/proc/PID/stat utime+stime), or 0
// when it cannot be read.
func CPUTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command (in parentheses, which may hold spaces): utime is field 14
	// and stime 15, in clock ticks of 1/100 s (USER_HZ on Linux).
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	if end < 0 || end+2 > len(s) {
		return 0
	}
	f := strings.Fields(s[end+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// SelfCPUTime is this process's user+system CPU time, to the microsecond (getrusage).
func SelfCPUTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Status is a field of /proc/PID/status ("VmRSS", "RssAnon", "VmHWM") as written there
// ("12345 kB"), and whether it was there.
func Status(pid int, field string) (string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "", false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// StatusKB is a kB field of /proc/PID/status as a number, and whether it was there.
func StatusKB(pid int, field string) (int, bool) {
	v, ok := Status(pid, field)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(v, "kB")))
	return n, err == nil
}
