package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVersionScript runs scripts/version.sh on a throw-away git repository through the
// life of a project (no tag, a release, commits after it, a pre-release, the next release)
// and checks each version against what dpkg accepts and how it sorts.
func TestVersionScript(t *testing.T) {
	for _, tool := range []string{"git", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	script := filepath.Join(repoRoot(t), "scripts", "version.sh")
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(),
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
			"GIT_AUTHOR_DATE=2026-01-02T23:30:00+02:00", "GIT_COMMITTER_DATE=2026-01-02T23:30:00+02:00",
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func(n int) {
		for range n {
			git("commit", "-q", "--allow-empty", "-m", "change")
		}
	}
	version := func() string {
		t.Helper()
		out, err := exec.Command("sh", script, dir).Output()
		if err != nil {
			t.Fatalf("version.sh: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	short := func() string { return git("rev-parse", "--short=7", "HEAD") }

	git("init", "-q")
	commit(1)
	var got []string
	check := func(want string) {
		t.Helper()
		v := version()
		if v != want {
			t.Errorf("version.sh = %q, want %q", v, want)
		}
		if out, err := run("", "dpkg", "--validate-version", v); err != nil {
			t.Errorf("dpkg refuses %q: %s", v, out)
		}
		got = append(got, v)
	}

	// No tag: 0.0.0~git<commit date in UTC>.<hash>. 23:30 at +02:00 is 21:30 UTC, same day.
	check("0.0.0~git20260102." + short())
	commit(1)
	check("0.0.0~git20260102." + short())
	git("tag", "not-a-version") // ignored
	git("tag", "v0.9.0")
	check("0.9.0")
	commit(3)
	check("0.9.0+3.g" + short())
	commit(9)
	check("0.9.0+12.g" + short())
	git("tag", "v0.10.0-rc1")
	check("0.10.0~rc1")
	commit(1)
	check("0.10.0~rc1+1.g" + short())
	git("tag", "v0.10.0")
	check("0.10.0")
	commit(1)
	check("0.10.0+1.g" + short())

	// got[0] and got[1] are both untagged builds of the same day: their order is their hash's,
	// which nobody can promise. Every other neighbour must sort strictly upwards.
	for i := 1; i+1 < len(got); i++ {
		if !versionLess(got[i], got[i+1]) {
			t.Errorf("dpkg does not sort %q before %q", got[i], got[i+1])
		}
	}
	if !versionLess(got[0], got[2]) {
		t.Errorf("dpkg does not sort the untagged %q before the first release %q", got[0], got[2])
	}
	// What git describe gave before, for the record: nfpm's 0.9.0~3-g... sorted below 0.9.0.
	if !versionLess("0.9.0~3-ga516813", "0.9.0") {
		t.Error("dpkg's ordering is not what this test assumes")
	}
	if ok, _ := regexp.MatchString(`^[0-9]`, version()); !ok {
		t.Error("version does not start with a digit")
	}

	// Not a git checkout: a version dpkg still accepts, and a warning.
	cmd := exec.Command("sh", script, t.TempDir())
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "0.0.0~unknown" {
		t.Errorf("outside git: %q, %v; want 0.0.0~unknown", out, err)
	}
}
