package packaging

import (
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// entry is one line of `dpkg-deb --contents`.
type entry struct{ mode, owner string }

// wantContents is every path of the package, with its mode and owner as dpkg-deb shows them.
var wantContents = map[string]entry{
	"./etc/":                                {"drwxr-xr-x", "root/root"},
	"./etc/wellgate/":                       {"drwxr-xr-x", "root/root"},
	"./etc/wellgate/wellgate.toml":          {"-rw-r-----", "root/wellgate"},
	"./lib/":                                {"drwxr-xr-x", "root/root"},
	"./lib/systemd/":                        {"drwxr-xr-x", "root/root"},
	"./lib/systemd/system/":                 {"drwxr-xr-x", "root/root"},
	"./lib/systemd/system/wellgate.service": {"-rw-r--r--", "root/root"},
	"./usr/":                                {"drwxr-xr-x", "root/root"},
	"./usr/bin/":                            {"drwxr-xr-x", "root/root"},
	"./usr/bin/wellgate":                    {"-rwxr-xr-x", "root/root"},
	"./usr/share/":                          {"drwxr-xr-x", "root/root"},
	"./usr/share/doc/":                      {"drwxr-xr-x", "root/root"},
	"./usr/share/doc/wellgate/":             {"drwxr-xr-x", "root/root"},
	"./usr/share/doc/wellgate/changelog.Debian.gz": {"-rw-r--r--", "root/root"},
	"./usr/share/doc/wellgate/config.example.toml": {"-rw-r--r--", "root/root"},
	"./usr/share/doc/wellgate/copyright":           {"-rw-r--r--", "root/root"},
	"./usr/share/lintian/":                         {"drwxr-xr-x", "root/root"},
	"./usr/share/lintian/overrides/":               {"drwxr-xr-x", "root/root"},
	"./usr/share/lintian/overrides/wellgate":       {"-rw-r--r--", "root/root"},
	"./usr/share/man/":                             {"drwxr-xr-x", "root/root"},
	"./usr/share/man/man1/":                        {"drwxr-xr-x", "root/root"},
	"./usr/share/man/man1/wellgate.1.gz":           {"-rw-r--r--", "root/root"},
	"./var/":                                       {"drwxr-xr-x", "root/root"},
	"./var/lib/":                                   {"drwxr-xr-x", "root/root"},
	"./var/lib/wellgate/":                          {"drwxr-x---", "wellgate/wellgate"},
}

// elfMachine is the ELF machine of each architecture's binary.
var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "armhf": elf.EM_ARM}

// goArch is the Go toolchain's GOARCH (and GOARM) of each Debian architecture.
var goArch = map[string][2]string{"amd64": {"amd64", ""}, "arm64": {"arm64", ""}, "armhf": {"arm", "7"}}

// TestPackageContents checks each .deb's control fields, maintainer scripts and every path
// with its mode and owner, and that the binary is the static one for the architecture,
// stamped with the package's version.
func TestPackageContents(t *testing.T) {
	gate(t)
	root := repoRoot(t)
	version := baseVersion(t)
	for arch, deb := range debs(t) {
		t.Run(arch, func(t *testing.T) {
			info := mustRun(t, "dpkg-deb", "--info", deb)
			t.Logf("dpkg-deb --info %s\n%s", filepath.Base(deb), info)
			fields := map[string]string{
				"Package": "wellgate", "Version": version, "Architecture": arch,
				"Depends": "adduser", "Section": "net", "Priority": "optional",
			}
			for f, want := range fields {
				if got := strings.TrimSpace(mustRun(t, "dpkg-deb", "--field", deb, f)); got != want {
					t.Errorf("%s: %q, want %q", f, got, want)
				}
			}
			for _, f := range []string{"Pre-Depends", "Recommends", "Conflicts", "Replaces", "Provides"} {
				if got := strings.TrimSpace(mustRun(t, "dpkg-deb", "--field", deb, f)); got != "" {
					t.Errorf("unexpected %s: %q", f, got)
				}
			}
			desc := strings.TrimSpace(mustRun(t, "dpkg-deb", "--field", deb, "Description"))
			if synopsis, _, _ := strings.Cut(desc, "\n"); len(synopsis) > 80 || synopsis == "" {
				t.Errorf("synopsis %q: empty or longer than 80 characters", synopsis)
			}

			contents := mustRun(t, "dpkg-deb", "--contents", deb)
			got := map[string]entry{}
			for _, line := range strings.Split(strings.TrimSpace(contents), "\n") {
				f := strings.Fields(line)
				if len(f) < 6 {
					t.Fatalf("dpkg-deb --contents line %q", line)
				}
				got[f[5]] = entry{f[0], f[1]}
			}
			for p, w := range wantContents {
				if g, ok := got[p]; !ok {
					t.Errorf("missing %s", p)
				} else if g != w {
					t.Errorf("%s: %s %s, want %s %s", p, g.mode, g.owner, w.mode, w.owner)
				}
			}
			for p := range got {
				if _, ok := wantContents[p]; !ok {
					t.Errorf("unexpected path %s", p)
				}
			}

			ctrl := t.TempDir()
			mustRun(t, "dpkg-deb", "--control", deb, ctrl)
			conffiles, _ := os.ReadFile(filepath.Join(ctrl, "conffiles"))
			if string(conffiles) != "/etc/wellgate/wellgate.toml\n" {
				t.Errorf("conffiles %q, want exactly /etc/wellgate/wellgate.toml", conffiles)
			}
			for script, src := range map[string]string{"postinst": "postinst.sh", "prerm": "prerm.sh", "postrm": "postrm.sh"} {
				assertSameFile(t, filepath.Join(ctrl, script), filepath.Join(root, "packaging", src), 0o755)
			}
			if _, err := os.Stat(filepath.Join(ctrl, "preinst")); err == nil {
				t.Error("unexpected preinst")
			}

			data := t.TempDir()
			mustRun(t, "dpkg-deb", "--extract", deb, data)
			assertSameFile(t, filepath.Join(data, "etc/wellgate/wellgate.toml"), filepath.Join(root, "packaging/wellgate.toml"), 0o640)
			assertSameFile(t, filepath.Join(data, "lib/systemd/system/wellgate.service"), filepath.Join(root, "packaging/wellgate.service"), 0o644)
			assertSameFile(t, filepath.Join(data, "usr/share/doc/wellgate/config.example.toml"), filepath.Join(root, "config.example.toml"), 0o644)
			assertSameFile(t, filepath.Join(data, "usr/share/lintian/overrides/wellgate"), filepath.Join(root, "packaging/lintian-overrides"), 0o644)

			changelog := gunzip(t, filepath.Join(data, "usr/share/doc/wellgate/changelog.Debian.gz"))
			if first, _, _ := strings.Cut(changelog, "\n"); first != "wellgate ("+version+") stable; urgency=medium" {
				t.Errorf("changelog starts %q", first)
			}
			if !regexp.MustCompile(`(?m)^ -- .+ <.+>  \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$`).MatchString(changelog) {
				t.Errorf("changelog has no trailer line:\n%s", changelog)
			}
			man := gunzip(t, filepath.Join(data, "usr/share/man/man1/wellgate.1.gz"))
			if !strings.HasPrefix(man, ".TH WELLGATE 1") || !strings.Contains(man, "check") {
				t.Errorf("man page:\n%s", man)
			}
			copyright, _ := os.ReadFile(filepath.Join(data, "usr/share/doc/wellgate/copyright"))
			if !bytes.Contains(copyright, []byte("Copyright")) || !bytes.Contains(copyright, []byte("github.com/mochi-mqtt/server/v2")) {
				t.Errorf("copyright lacks the notice or the linked modules:\n%s", copyright)
			}

			checkBinary(t, filepath.Join(data, "usr/bin/wellgate"), arch)
			if arch == "amd64" {
				checkConfigExamples(t, filepath.Join(data, "usr/bin/wellgate"), filepath.Join(data, "etc/wellgate/wellgate.toml"))
			}
		})
	}
}

// checkBinary checks that bin is a static, stripped linux binary for arch built with
// CGO_ENABLED=0 (and GOARM=7 for armhf). (-trimpath keeps -ldflags out of the build info:
// the stamped version is checked by running the binaries, in TestInstallUpgradeRemovePurge
// and TestARMUnderQemu.)
func checkBinary(t *testing.T, bin, arch string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elfMachine[arch] {
		t.Errorf("ELF machine %v, want %v", f.Machine, elfMachine[arch])
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary is dynamically linked (%v)", p.Type)
		}
	}
	if f.Section(".symtab") != nil {
		t.Error("binary is not stripped (.symtab present)")
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	want := map[string]string{"GOOS": "linux", "GOARCH": goArch[arch][0], "CGO_ENABLED": "0", "-trimpath": "true"}
	if goArch[arch][1] != "" {
		want["GOARM"] = goArch[arch][1]
	}
	for k, v := range want {
		if settings[k] != v {
			t.Errorf("build setting %s=%q, want %q", k, settings[k], v)
		}
	}
}

// checkConfigExamples uncomments the examples in the packaged configuration (the upstream
// broker, a device with a tag) and checks that the result is valid too: what a technician
// gets by deleting the '# '.
func checkConfigExamples(t *testing.T, bin, conf string) {
	t.Helper()
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	example := regexp.MustCompile(`^# (\[\[?[a-z.]+\]\]?|[a-z_]+ = .*)$`)
	var lines []string
	uncommented := 0
	for _, l := range strings.Split(string(b), "\n") {
		if m := example.FindStringSubmatch(l); m != nil {
			l = m[1]
			uncommented++
		}
		lines = append(lines, l)
	}
	path := filepath.Join(t.TempDir(), "examples.toml")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run("", bin, "check", "-config", path)
	if err != nil || !strings.Contains(out, "(1 devices, 1 tags)") {
		t.Errorf("the packaged configuration with its %d example lines uncommented: %v\n%s", uncommented, err, out)
	}
}

func assertSameFile(t *testing.T, got, want string, mode os.FileMode) {
	t.Helper()
	g, err := os.ReadFile(got)
	if err != nil {
		t.Error(err)
		return
	}
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("%s differs from %s", got, want)
	}
	if st, err := os.Stat(got); err == nil && st.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want %v", got, st.Mode().Perm(), mode)
	}
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(b)
}

// TestLintian runs lintian on each package: no errors (the one override, for
// statically-linked-binary, ships in the package with its reason). Its whole output is logged.
func TestLintian(t *testing.T) {
	gate(t)
	t.Parallel() // with the other slow ones: lintian, qemu, the install cycle
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Fatal("lintian is not installed (scripts/install-peers.sh installs it)")
	}
	var wg sync.WaitGroup
	outs := map[string]string{}
	var mu sync.Mutex
	for arch, deb := range debs(t) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, _ := run("", "lintian", "--pedantic", "--show-overrides", deb)
			mu.Lock()
			outs[arch] = out
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, arch := range arches {
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(outs[arch]), "\n") {
			if l != "" && !strings.Contains(l, "running with root privileges") {
				lines = append(lines, l)
			}
		}
		t.Logf("lintian --pedantic --show-overrides wellgate_%s:\n%s", arch, strings.Join(lines, "\n"))
		for _, l := range lines {
			if strings.HasPrefix(l, "E: ") {
				t.Errorf("lintian error (%s): %s", arch, l)
			}
		}
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "O: wellgate: statically-linked-binary") }) {
			t.Errorf("lintian (%s) did not use the statically-linked-binary override", arch)
		}
	}
}

// TestSystemdSecurity scores the unit as shipped with `systemd-analyze security --offline`:
// at most 3.0 (the "about 3"; 8.7 EXPOSED before). `systemd-analyze verify` needs the
// unit's binary and man page in place, so it runs in TestInstallUpgradeRemovePurge.
func TestSystemdSecurity(t *testing.T) {
	gate(t)
	data := t.TempDir()
	mustRun(t, "dpkg-deb", "--extract", debs(t)["amd64"], data)
	unit := filepath.Join(data, "lib/systemd/system/wellgate.service")
	out, err := run("", "systemd-analyze", "security", "--offline=true", unit)
	t.Logf("systemd-analyze security --offline=true wellgate.service:\n%s", out)
	if err != nil {
		t.Fatalf("systemd-analyze security: %v", err)
	}
	m := regexp.MustCompile(`Overall exposure level for wellgate\.service: ([0-9.]+) (\w+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no overall exposure level in the output")
	}
	score, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("exposure %.1f %s", score, m[2])
	if score > 3.0 {
		t.Errorf("exposure %.1f %s, want at most 3.0", score, m[2])
	}
}
