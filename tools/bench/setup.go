package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// setup builds the gateway once, which is the simulator too, and reads the machine.
func setup(res *results) (*env, func(), error) {
	dir, err := os.MkdirTemp("", "wellgate-bench-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	e := &env{dir: dir, bin: filepath.Join(dir, "wellgate"), src: filepath.Join(dir, "src")}
	res.machine = readMachine()
	// The committed HEAD, not the work tree, which may hold someone's half-made change.
	progress("exporting HEAD (%s) to %s and building %s", res.machine.commit, e.src, e.bin)
	if err := exportHead(e.src); err != nil {
		cleanup()
		return nil, nil, err
	}
	if err := goBuild(e.src, e.bin, nil, "-trimpath"); err != nil {
		cleanup()
		return nil, nil, err
	}
	return e, cleanup, nil
}

// exportHead writes the files of the commit at HEAD into dir.
func exportHead(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.Command("sh", "-c", `git archive --format=tar HEAD | tar -x -C "$1"`, "sh", dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git archive HEAD: %w\n%s", err, b)
	}
	return nil
}

// goBuild builds src's ./cmd/wellgate statically into out, with extra environment and flags.
func goBuild(src, out string, env []string, flags ...string) error {
	args := append([]string{"build"}, flags...)
	args = append(args, "-o", out, "./cmd/wellgate")
	cmd := exec.Command("go", args...)
	cmd.Dir = src
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// machine is what the figures were measured on.
type machine struct {
	cpu, kernel, os, goVersion, commit string
	cores                              int
	memKB                              int
}

func readMachine() machine {
	m := machine{cores: runtime.NumCPU(), goVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				fmt.Sscanf(strings.TrimSpace(v), "%d", &m.memKB)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.os = strings.Trim(v, `"`)
			}
		}
	}
	if b, err := exec.Command("go", "version").Output(); err == nil {
		m.goVersion = strings.TrimSpace(string(b))
	}
	if b, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		m.commit = strings.TrimSpace(string(b))
	}
	return m
}
