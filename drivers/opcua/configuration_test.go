package opcua

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/drivers"
)

func loadText(t *testing.T, text string) (*config.Config, string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "site.toml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(file)
	return c, file, err
}

const tomlHead = "[sparkplug]\ngroup_id = \"G\"\nedge_node_id = \"E\"\n"

// TestConfigurationIssueExample loads the issue's example device and builds the driver: every
// key decoded, defaults applied, the tag described with its type, deadband and writability.
func TestConfigurationIssueExample(t *testing.T) {
	c, _, err := loadText(t, tomlHead+`
[[device]]
name = "Separator Skid"
driver = "opcua"
endpoint = "opc.tcp://10.0.0.30:4840"
security_policy = "Basic256Sha256"
security_mode = "SignAndEncrypt"
username = "field"
password = "wellsite"
server_fingerprint = "SHA256:3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f"
mode = "subscribe"
poll_interval = "1s"

  [[device.tag]]
  name = "Separator/Level"
  node_id = "ns=2;s=Separator.Level"
  type = "Float"
  deadband = 0.5
  writable = true

  [[device.tag]]
  name = "Separator/Pressure"
  node_id = "nsu=urn:skid;i=1001"
`)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	devs := c.Enabled(Name)
	o := deviceOptions(devs[0], "/data")
	if o.Endpoint != "opc.tcp://10.0.0.30:4840" || o.SecurityPolicy != "Basic256Sha256" || o.Username != "field" ||
		o.PKIDir != "/data/pki" || o.Interval != time.Second || o.PollSchedule != "clock" || o.Mode != ModeSubscribe || !strings.HasSuffix(o.Where, "site.toml:5") {
		t.Fatalf("options %+v", o)
	}
	if tg := o.Tags[0]; tg.NodeID != "ns=2;s=Separator.Level" || tg.Deadband != 0.5 || !tg.Writable || !strings.HasSuffix(tg.Where, "site.toml:17") {
		t.Fatalf("tag options %+v", tg)
	}
	built, err := build(devs, discardLogger())
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	info := built.Devices()[0]
	if info.Driver != Name || info.Tags[0].Type != drivers.Float || info.Tags[0].Deadband != 0.5 || !info.Tags[0].Writable ||
		info.Tags[1].Type != drivers.Double {
		t.Fatalf("described %+v", info)
	}
}

// TestConfigurationProblemsWithLines: every problem of the driver's keys is reported at once,
// at its key's line, each once (the common keys are the configuration's), disabled devices too.
func TestConfigurationProblemsWithLines(t *testing.T) {
	text := tomlHead + `
[[device]]
name = "A"
driver = "opcua"
disabled = true
endpoint = "http://x"
security_policy = "Basic512"

  [[device.tag]]
  name = "t1"
  node_id = "ns=2;Level"

  [[device.tag]]
  name = "t2"
  node_id = "i=5"
  type = "Guid"
  deadband = -1

[[device]]
name = "B"
driver = "opcua"
endpoint = "opc.tcp://h:4840"
security_policy = "Basic256Sha256"
security_mode = "None"
password = "p"
mode = "push"
server_fingerprint = "SHA256:12"

[[device]]
name = "D"
driver = "opcua"
endpoint = "opc.tcp://h:4840"
bogus = 1

[[device]]
name = "C"
driver = "opcua"
endpoint = "opc.tcp://h:4840"
username = "u"
password = "p"
server_fingerprint = "SHA256:3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f"
mode = "push"

  [[device.tag]]
  name = "s"
  node_id = "i=5"
  type = "String"
  deadband = 1
`
	_, file, err := loadText(t, text)
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load = %v", err)
	}
	lineOf := func(s string, n int) int {
		for i, l := range strings.Split(text, "\n") {
			if strings.TrimSpace(l) == s {
				if n--; n == 0 {
					return i + 1
				}
			}
		}
		t.Fatalf("no line %q", s)
		return 0
	}
	want := []struct {
		line   int
		substr string
	}{
		{lineOf(`endpoint = "http://x"`, 1), `device "A": endpoint "http://x" must start with opc.tcp://`},
		{lineOf(`security_policy = "Basic512"`, 1), `device "A": security_policy "Basic512"`},
		{lineOf(`node_id = "ns=2;Level"`, 1), `tag "t1": node id "ns=2;Level"`},
		{lineOf(`type = "Guid"`, 1), `tag "t2": type "Guid"`},
		{lineOf(`deadband = -1`, 1), `tag "t2": deadband must be 0 or more`},
		{lineOf(`security_mode = "None"`, 1), `device "B": security_policy Basic256Sha256 needs security_mode Sign or SignAndEncrypt`},
		{lineOf(`mode = "push"`, 1), `device "B": mode "push" must be subscribe or poll`},
		{lineOf(`server_fingerprint = "SHA256:12"`, 1), `device "B": server_fingerprint "SHA256:12"`},
		{lineOf(`bogus = 1`, 1), `device "D": unknown key`},
		{lineOf(`password = "p"`, 1), `device "B": username and password go together`},
		{lineOf(`mode = "push"`, 2), `device "C": mode "push"`},
		{lineOf(`server_fingerprint = "SHA256:3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f"`, 1), `device "C": with security_policy None no server certificate is checked`},
		{lineOf(`deadband = 1`, 1), `tag "s": a deadband applies to numbers, not String`},
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, file+":"+strconv.Itoa(w.line)+": ") || !strings.Contains(msg, w.substr) {
			t.Errorf("missing %s:%d: …%s…", file, w.line, w.substr)
		}
	}
	if n := strings.Count(msg, "deadband must be 0 or more"); n != 1 {
		t.Errorf("the negative deadband is reported %d times, want once", n)
	}
	if t.Failed() {
		t.Logf("got:\n%s", msg)
	}
}

// TestREADMEExamplesLoad loads the TOML examples of this package's README (the proposed
// README section and config.example.toml entries), so that they stay true.
func TestREADMEExamplesLoad(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(b), "```toml\n")[1:]
	loaded := 0
	for _, blk := range blocks {
		text, _, _ := strings.Cut(blk, "```")
		if !strings.Contains(text, "[[device]]") {
			continue
		}
		text = strings.ReplaceAll(text, `server_fingerprint = "SHA256:3f…"`, `server_fingerprint = "SHA256:`+strings.Repeat("3f", 32)+`"`)
		if _, _, err := loadText(t, tomlHead+text); err != nil {
			t.Errorf("README example does not load: %v\n%s", err, text)
		}
		loaded++
	}
	if loaded != 2 {
		t.Fatalf("loaded %d examples, want 2", loaded)
	}
}
