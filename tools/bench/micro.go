package main

import (
	"fmt"
	"os/exec"
	"strings"
)

// microResult is `go test -bench` over every package: each result line, with its package.
type microResult struct {
	cmd   string
	lines []microLine
}

type microLine struct{ pkg, name, rest string }

func micro(src string) (*microResult, error) {
	args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem", "./..."}
	m := &microResult{cmd: "go test -run '^$' -bench . -benchmem ./..."} // args, quoted for a shell
	progress("micro: %s", m.cmd)
	cmd := exec.Command("go", args...)
	cmd.Dir = src
	out, err := cmd.CombinedOutput()
	pkg := ""
	for _, l := range strings.Split(string(out), "\n") {
		if p, ok := strings.CutPrefix(l, "pkg: "); ok {
			pkg = strings.TrimPrefix(p, "github.com/wellgate/wellgate/")
			continue
		}
		if f := strings.Fields(l); len(f) > 2 && strings.HasPrefix(f[0], "Benchmark") {
			m.lines = append(m.lines, microLine{pkg, f[0], strings.Join(f[1:], " ")})
		}
	}
	if err != nil {
		return m, fmt.Errorf("%s: %w\n%s", m.cmd, err, tailOf(string(out), 2000))
	}
	return m, nil
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
