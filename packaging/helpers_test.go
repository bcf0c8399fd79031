package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// arches are the Debian architectures wellgate is packaged for.
var arches = []string{"amd64", "arm64", "armhf"}

// gate skips unless the test runs from `make test-package` (which builds the packages and
// sets WELLGATE_PACKAGE_TEST) as root (dpkg -i/-r/-P on this machine; lintian and qemu need
// no root, but the package checks run as one suite).
func gate(t *testing.T) {
	t.Helper()
	if os.Getenv("WELLGATE_PACKAGE_TEST") == "" {
		t.Skip("package tests run from `make test-package`, which builds dist/*.deb and sets WELLGATE_PACKAGE_TEST=1")
	}
	if os.Geteuid() != 0 {
		t.Skip("package tests need root: they install, upgrade and purge the package on this machine")
	}
}

// repoRoot is the repository's top directory (the tests run in packaging/).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// baseVersion is the version `make package` stamped (WELLGATE_VERSION), or the one
// scripts/version.sh gives for this checkout.
func baseVersion(t *testing.T) string {
	t.Helper()
	if v := os.Getenv("WELLGATE_VERSION"); v != "" {
		return v
	}
	out, err := run("", "sh", filepath.Join(repoRoot(t), "scripts", "version.sh"))
	if err != nil {
		t.Fatalf("scripts/version.sh: %v\n%s", err, out)
	}
	return strings.TrimSpace(out)
}

// debs returns the three packages `make package` put into WELLGATE_DIST (default dist/).
func debs(t *testing.T) map[string]string {
	t.Helper()
	dist := os.Getenv("WELLGATE_DIST")
	if dist == "" {
		dist = filepath.Join(repoRoot(t), "dist")
	}
	v := baseVersion(t)
	m := map[string]string{}
	for _, a := range arches {
		p := filepath.Join(dist, "wellgate_"+v+"_"+a+".deb")
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%v: run `make package` first (make test-package does)", err)
		}
		m[a] = p
	}
	return m
}

// run runs a command with stdin closed (/dev/null) and returns its combined output.
func run(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// mustRun runs a command and fails the test when it fails.
func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run("", name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// dpkg runs dpkg non-interactively (stdin is /dev/null, so a conffile prompt would fail
// instead of waiting), retrying while another dpkg or apt holds the lock.
func dpkg(t *testing.T, args ...string) (string, error) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := run("", "dpkg", args...)
		if err != nil && strings.Contains(out, "lock") && strings.Contains(out, "another process") && time.Now().Before(deadline) {
			time.Sleep(2 * time.Second)
			continue
		}
		t.Logf("$ dpkg %s\n%s", strings.Join(args, " "), out)
		return out, err
	}
}

// dpkgStatus is dpkg-query's status and version of wellgate, "" when dpkg does not know it.
func dpkgStatus(t *testing.T) (status, version string) {
	t.Helper()
	out, err := run("", "dpkg-query", "-W", "-f", "${Status}\t${Version}", "wellgate")
	if err != nil {
		return "", ""
	}
	status, version, _ = strings.Cut(strings.TrimSpace(out), "\t")
	if status == "unknown ok not-installed" {
		return "", ""
	}
	return status, version
}

// versionLess reports whether dpkg sorts a before b.
func versionLess(a, b string) bool {
	_, err := run("", "dpkg", "--compare-versions", a, "lt", b)
	return err == nil
}
