package packaging

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const (
	conf       = "/etc/wellgate/wellgate.toml"
	dataDir    = "/var/lib/wellgate"
	unitPath   = "/lib/systemd/system/wellgate.service"
	enableLink = "/etc/systemd/system/multi-user.target.wants/wellgate.service"
	dshState   = "/var/lib/systemd/deb-systemd-helper-enabled/wellgate.service.dsh-also"
	dshMasked  = "/var/lib/systemd/deb-systemd-helper-masked/wellgate.service"
)

// leftovers are the things the package creates; none may exist before the test, and none
// after the purge.
var leftovers = []string{conf, "/etc/wellgate", dataDir, "/usr/bin/wellgate", unitPath, enableLink, dshState, dshMasked}

// TestInstallUpgradeRemovePurge installs the amd64 package on this machine (systemd is not
// PID 1 here, as in a chroot that builds an SD-card image), edits its configuration, upgrades
// to a higher version built here, then to one whose `check` rejects the configuration (which
// must fail), removes and purges it. It refuses to run where wellgate is installed, and
// purges in t.Cleanup so the machine is left as it was found.
func TestInstallUpgradeRemovePurge(t *testing.T) {
	gate(t)
	t.Parallel() // with the other slow ones: lintian, qemu, the install cycle
	if status, v := dpkgStatus(t); status != "" {
		t.Fatalf("wellgate %s is already known to dpkg (%s): refusing to install over it; purge it first", v, status)
	}
	for _, p := range leftovers {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s exists: refusing to run on a machine with wellgate's files", p)
		}
	}
	if _, err := run("", "getent", "passwd", "wellgate"); err == nil {
		t.Fatal("a user wellgate exists: refusing to run")
	}
	if _, err := run("", "getent", "group", "wellgate"); err == nil {
		t.Fatal("a group wellgate exists: refusing to run")
	}
	dialoutBefore, _ := run("", "getent", "group", "dialout")
	systemdRunning := isDir("/run/systemd/system")
	t.Cleanup(func() { cleanup(t) })

	root := repoRoot(t)
	v1 := baseVersion(t)
	v2 := v1 + "+pkgtest1"
	v3 := v1 + "+pkgtest2"
	if !versionLess(v1, v2) || !versionLess(v2, v3) {
		t.Fatalf("dpkg does not sort %s < %s < %s", v1, v2, v3)
	}
	work := t.TempDir()
	// Built before anything is installed, so that a build failure leaves nothing behind; both
	// at once, as they are most of this test's time.
	bin2 := filepath.Join(work, "wellgate-"+v2)
	built2 := make(chan error, 1)
	var out2 string
	go func() {
		var err error
		out2, err = goBuild(root, bin2, v2)
		built2 <- err
	}()
	deb3, stricter := buildStricterDeb(t, root, work, v3)
	if err := <-built2; err != nil {
		t.Fatalf("go build %s: %v\n%s", v2, err, out2)
	}
	deb2 := packageDeb(t, root, work, v2, bin2)

	// --- install -------------------------------------------------------------------------
	if out, err := dpkg(t, "-i", debs(t)["amd64"]); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	if status, v := dpkgStatus(t); status != "install ok installed" || v != v1 {
		t.Fatalf("after install: %q %q", status, v)
	}
	assertVersion(t, v1)
	if out := mustRun(t, "/usr/bin/wellgate", "check", "-config", conf); !strings.Contains(out, "ok") {
		t.Errorf("wellgate check: %q", out)
	}
	uid, gid := lookupUser(t)
	if uid >= 1000 {
		t.Errorf("wellgate uid %d is not a system uid", uid)
	}
	pw := mustRun(t, "getent", "passwd", "wellgate")
	if f := strings.Split(strings.TrimSpace(pw), ":"); f[5] != dataDir || f[6] != "/usr/sbin/nologin" {
		t.Errorf("passwd entry %q: want home %s, shell /usr/sbin/nologin", pw, dataDir)
	}
	if groups := mustRun(t, "id", "-nG", "wellgate"); !strings.Contains(" "+strings.TrimSpace(groups)+" ", " dialout ") {
		t.Errorf("wellgate is not in group dialout: %q", groups)
	}
	assertStat(t, conf, 0o640, 0, gid, false)
	assertStat(t, "/etc/wellgate", 0o755, 0, 0, true)
	assertStat(t, dataDir, 0o750, uid, gid, true)
	assertStat(t, "/usr/bin/wellgate", 0o755, 0, 0, false)
	assertStat(t, unitPath, 0o644, 0, 0, false)
	if target, err := os.Readlink(enableLink); err != nil || target != unitPath {
		t.Errorf("not enabled on first install (systemd running: %v): %s -> %q, %v", systemdRunning, enableLink, target, err)
	}
	if out, err := run("", "systemd-analyze", "verify", "wellgate.service"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify wellgate.service: %v\n%s", err, out)
	} else {
		t.Log("systemd-analyze verify wellgate.service: no complaints")
	}

	// --- the admin edits the configuration, the gateway keeps data, the admin disables it ----
	orig := readFile(t, conf)
	edited := strings.Replace(orig, `edge_node_id = "CHANGE-ME"`, `edge_node_id = "PAD-TEST"`, 1) +
		"\n# edited on site by the package test\n"
	if edited == orig+"\n# edited on site by the package test\n" {
		t.Fatal("the packaged configuration has no edge_node_id = \"CHANGE-ME\" to edit")
	}
	writeFile(t, conf, edited)
	marker := filepath.Join(dataDir, "package-test-data")
	writeFile(t, marker, "queued values\n")
	if err := os.Chown(marker, uid, gid); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "systemctl", "disable", "wellgate.service")
	if _, err := os.Lstat(enableLink); err == nil {
		t.Fatal("systemctl disable left the enable link")
	}

	// --- upgrade: no prompt, the edit, the data and the admin's disable kept -----------------
	out, err := dpkg(t, "-i", deb2)
	if err != nil {
		t.Fatalf("upgrade to %s: %v\n%s", v2, err, out)
	}
	if strings.Contains(out, "Configuration file") || strings.Contains(out, "conffile") {
		t.Errorf("dpkg talked about the conffile on upgrade:\n%s", out)
	}
	if status, v := dpkgStatus(t); status != "install ok installed" || v != v2 {
		t.Fatalf("after upgrade: %q %q", status, v)
	}
	assertVersion(t, v2)
	if got := readFile(t, conf); got != edited {
		t.Errorf("upgrade changed the edited configuration:\n%s", got)
	}
	assertStat(t, conf, 0o640, 0, gid, false)
	if m, _ := filepath.Glob(conf + ".dpkg-*"); len(m) > 0 {
		t.Errorf("dpkg left %v", m)
	}
	if got := readFile(t, marker); got != "queued values\n" {
		t.Errorf("upgrade lost data: %q", got)
	}
	if _, err := os.Lstat(enableLink); err == nil {
		t.Error("upgrade re-enabled the unit the admin disabled")
	}

	// --- an upgrade whose check rejects the configuration fails loudly -----------------------
	breakConfig := stricter.prepare(t)
	out, err = dpkg(t, "-i", deb3)
	if err == nil {
		t.Errorf("upgrade to %s (%s) succeeded; it must fail", v3, stricter.why)
	}
	for _, want := range []string{"does not pass 'wellgate check'", stricter.message, "dpkg --configure wellgate"} {
		if !strings.Contains(out, want) {
			t.Errorf("the failed upgrade's output lacks %q", want)
		}
	}
	if status, v := dpkgStatus(t); status != "install ok half-configured" || v != v3 {
		t.Errorf("after the failed upgrade: %q %q, want half-configured %s", status, v, v3)
	}
	if got := readFile(t, conf); got != breakConfig {
		t.Errorf("the failed upgrade changed the configuration:\n%s", got)
	}
	// The admin fixes the file and finishes the upgrade as the message says.
	fixed := stricter.fix(t)
	if out, err := dpkg(t, "--configure", "wellgate"); err != nil {
		t.Fatalf("dpkg --configure after the fix: %v\n%s", err, out)
	}
	if status, v := dpkgStatus(t); status != "install ok installed" || v != v3 {
		t.Errorf("after the fix: %q %q", status, v)
	}

	// --- remove keeps configuration, data and user --------------------------------------------
	if out, err := dpkg(t, "-r", "wellgate"); err != nil {
		t.Fatalf("dpkg -r: %v\n%s", err, out)
	}
	if status, _ := dpkgStatus(t); status != "deinstall ok config-files" {
		t.Errorf("after remove: %q", status)
	}
	for _, gone := range []string{"/usr/bin/wellgate", unitPath} {
		if _, err := os.Lstat(gone); err == nil {
			t.Errorf("remove left %s", gone)
		}
	}
	if got := readFile(t, conf); got != fixed {
		t.Errorf("remove changed the configuration:\n%s", got)
	}
	if got := readFile(t, marker); got != "queued values\n" {
		t.Errorf("remove lost data: %q", got)
	}
	if _, err := run("", "getent", "passwd", "wellgate"); err != nil {
		t.Error("remove deleted the user")
	}

	// --- purge removes everything -----------------------------------------------------------
	if out, err := dpkg(t, "-P", "wellgate"); err != nil {
		t.Fatalf("dpkg -P: %v\n%s", err, out)
	}
	if status, _ := dpkgStatus(t); status != "" {
		t.Errorf("after purge dpkg still knows wellgate: %q", status)
	}
	for _, p := range leftovers {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("purge left %s", p)
		}
	}
	if _, err := run("", "getent", "passwd", "wellgate"); err == nil {
		t.Error("purge left the user wellgate")
	}
	if _, err := run("", "getent", "group", "wellgate"); err == nil {
		t.Error("purge left the group wellgate")
	}
	if after, _ := run("", "getent", "group", "dialout"); after != dialoutBefore {
		t.Errorf("group dialout was %q, is %q", dialoutBefore, after)
	}
}

// stricterRelease is the package whose `check` rejects the configuration in place.
type stricterRelease struct {
	why     string                    // for messages
	message string                    // what its check says about the file
	prepare func(t *testing.T) string // readies the configuration; returns its content
	fix     func(t *testing.T) string // the admin's fix; returns the new content
}

// buildStricterDeb builds the package of a "next release" that no longer accepts
// log_level = "info": this tree's wellgate with one more file compiled into package config
// (through `go build -overlay`, the tree is not touched) that drops "info" from the accepted
// levels. The running configuration, which the installed version accepts, says "info", so
// the new version's check rejects it. Should the overlay no longer compile (config was
// reorganised), it falls back to this tree's wellgate and a configuration edit the binary
// rejects (an unknown key), which tests the same maintainer-script path.
func buildStricterDeb(t *testing.T, root, work, version string) (string, stricterRelease) {
	t.Helper()
	src := filepath.Join(work, "stricter.go")
	writeFile(t, src, `package config

// Compiled in by packaging/install_test.go only: a release that dropped log level "info".
func init() { logLevels = []string{"debug", "warn", "error"} }
`)
	overlay := filepath.Join(work, "overlay.json")
	b, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(root, "config", "zz_packaging_test_stricter.go"): src}})
	writeFile(t, overlay, string(b))
	bin := filepath.Join(work, "wellgate-stricter")
	out, err := goBuild(root, bin, version, "-overlay", overlay)
	if err != nil {
		t.Logf("the stricter build does not compile any more, falling back to an unknown key:\n%s", out)
	} else {
		deb := packageDeb(t, root, work, version, bin)
		return deb, stricterRelease{
			why:     "its check no longer accepts log_level \"info\"",
			message: "log_level",
			prepare: func(t *testing.T) string {
				c := readFile(t, conf)
				if !strings.Contains(c, `log_level = "info"`) {
					t.Fatalf("the configuration does not say log_level = \"info\":\n%s", c)
				}
				// The premise: the installed version accepts the file, the new one does not.
				mustRun(t, "/usr/bin/wellgate", "check", "-config", conf)
				if out, err := run("", bin, "check", "-config", conf); err == nil {
					t.Fatalf("the stricter build accepts the configuration:\n%s", out)
				}
				return c
			},
			fix: func(t *testing.T) string {
				c := strings.Replace(readFile(t, conf), `log_level = "info"`, `log_level = "warn"`, 1)
				writeFile(t, conf, c)
				return c
			},
		}
	}
	deb := buildDeb(t, root, work, version)
	const bad = "\n[gateway_retired]\nkey = 1\n"
	return deb, stricterRelease{
		why:     "the configuration has a key the binary does not know",
		message: "gateway_retired",
		prepare: func(t *testing.T) string {
			c := readFile(t, conf) + bad
			writeFile(t, conf, c)
			return c
		},
		fix: func(t *testing.T) string {
			c := strings.Replace(readFile(t, conf), bad, "", 1)
			writeFile(t, conf, c)
			return c
		},
	}
}

// buildDeb builds this tree's amd64 wellgate stamped with version and packages it.
func buildDeb(t *testing.T, root, work, version string) string {
	t.Helper()
	bin := filepath.Join(work, "wellgate-"+version)
	if out, err := goBuild(root, bin, version); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return packageDeb(t, root, work, version, bin)
}

func goBuild(root, bin, version string, extra ...string) (string, error) {
	args := append([]string{"build", "-trimpath", "-ldflags", "-s -w -X main.version=" + version, "-o", bin}, extra...)
	args = append(args, "./cmd/wellgate")
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// packageDeb runs scripts/package.sh, the same path `make package` takes.
func packageDeb(t *testing.T, root, work, version, bin string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(root, "scripts", "package.sh"), "-a", "amd64", "-v", version, "-b", bin, "-o", work)
	cmd.Env = append(os.Environ(), "GO="+goTool())
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("package.sh %s: %v\n%s%s", version, err, out, stderr)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// cleanup purges wellgate whatever state the test left it in, then removes anything the
// purge should have removed (the test has already reported it), so the machine is as found.
func cleanup(t *testing.T) {
	if status, _ := dpkgStatus(t); status != "" {
		if out, err := dpkg(t, "-P", "wellgate"); err != nil {
			t.Errorf("cleanup: dpkg -P: %v\n%s", err, out)
			if out, err := dpkg(t, "-P", "--force-remove-reinstreq", "--force-depends", "wellgate"); err != nil {
				t.Errorf("cleanup: forced purge: %v\n%s", err, out)
			}
		}
	}
	for _, p := range leftovers {
		if _, err := os.Lstat(p); err == nil {
			t.Logf("cleanup: removing %s", p)
			_ = os.RemoveAll(p)
		}
	}
	if _, err := run("", "getent", "passwd", "wellgate"); err == nil {
		t.Log("cleanup: deleting user wellgate")
		_, _ = run("", "userdel", "wellgate")
	}
	if _, err := run("", "getent", "group", "wellgate"); err == nil {
		t.Log("cleanup: deleting group wellgate")
		_, _ = run("", "groupdel", "wellgate")
	}
}

// assertVersion checks that the installed binary says "wellgate VERSION ...".
func assertVersion(t *testing.T, version string) {
	t.Helper()
	out := mustRun(t, "/usr/bin/wellgate", "version")
	if f := strings.Fields(out); len(f) < 2 || f[0] != "wellgate" || f[1] != version {
		t.Errorf("wellgate version: %q, want wellgate %s", out, version)
	}
}

func lookupUser(t *testing.T) (uid, gid int) {
	t.Helper()
	out := strings.TrimSpace(mustRun(t, "getent", "passwd", "wellgate"))
	f := strings.Split(out, ":")
	if len(f) != 7 {
		t.Fatalf("getent passwd wellgate: %q", out)
	}
	fmt.Sscan(f[2], &uid)
	g := strings.Split(strings.TrimSpace(mustRun(t, "getent", "group", "wellgate")), ":")
	fmt.Sscan(g[2], &gid)
	return uid, gid
}

func assertStat(t *testing.T, path string, mode os.FileMode, uid, gid int, dir bool) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != mode || int(sys.Uid) != uid || int(sys.Gid) != gid || st.IsDir() != dir {
		t.Errorf("%s: mode %v uid %d gid %d dir %v; want %v %d %d %v", path, st.Mode().Perm(), sys.Uid, sys.Gid, st.IsDir(), mode, uid, gid, dir)
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeFile replaces a file's content in place, keeping its mode and owner.
func writeFile(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
