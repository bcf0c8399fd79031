package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/wellgate/wellgate/internal/peers"
)

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

type apiDevice struct {
	Name     string     `json:"name"`
	State    string     `json:"state"`
	LastGood *time.Time `json:"last_good"`
	Response *int64     `json:"response_time_ns"`
}

type apiTag struct {
	Device    string     `json:"device"`
	Tag       string     `json:"tag"`
	Value     any        `json:"value"`
	Display   string     `json:"display"`
	Quality   string     `json:"quality"`
	LastGood  string     `json:"last_good_display"`
	LastGoodT *time.Time `json:"last_good_timestamp"`
}

// The page's API against a running gateway with real devices: a device that never answered is
// "connecting" or "down" with nulls, never green; a disabled one is listed as disabled; a device
// that stops keeps its tags' last good values, marked bad; the bad-only filter finds them.
func TestStatusAPIAgainstDevices(t *testing.T) {
	p := &plc{}
	p.Set(func(p *plc) { p.Holding[0] = 1234 })
	plcAddr := freeAddr(t)
	srv := peers.ServePLC(t, plcAddr, p)
	deadAddr := freeAddr(t) // nothing listens there
	src := fmt.Sprintf(`
[gateway]
data_dir = %q
[sparkplug]
group_id = "API"
edge_node_id = "Node"
[broker]
listen = "127.0.0.1:0"
[web]
listen = "127.0.0.1:0"
[[device]]
name = "Live"
driver = "modbus-tcp"
address = %q
poll_interval = "100ms"
timeout = "300ms"
  [[device.tag]]
  name = "Level"
  address = "40001"
  type = "uint16"
[[device]]
name = "Dead"
driver = "modbus-tcp"
address = %q
poll_interval = "100ms"
timeout = "300ms"
  [[device.tag]]
  name = "Pressure"
  address = "40001"
  type = "uint16"
[[device]]
name = "Spare"
driver = "modbus-tcp"
address = "127.0.0.1:1"
disabled = true
  [[device.tag]]
  name = "Unused"
  address = "40001"
`, t.TempDir(), plcAddr, deadAddr)
	r := startGatewayN(t, writeTOML(t, t.TempDir(), src))
	t.Cleanup(r.stop)
	base := "http://" + r.WebAddr()

	devices := func() map[string]apiDevice {
		var ds []apiDevice
		getJSON(t, base+"/api/devices", &ds)
		m := map[string]apiDevice{}
		for _, d := range ds {
			m[d.Name] = d
		}
		return m
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("Live communicating", func() bool { return devices()["Live"].State == "communicating" })
	ds := devices()
	if d := ds["Dead"]; (d.State != "connecting" && d.State != "down") || d.LastGood != nil || d.Response != nil {
		t.Errorf("never-answering device: %+v, want connecting or down with null last_good and response time", d)
	}
	if d := ds["Spare"]; d.State != "disabled" {
		t.Errorf("disabled device: %+v", d)
	}
	if d := ds["Live"]; d.LastGood == nil || d.Response == nil {
		t.Errorf("answering device without last_good/response time: %+v", d)
	}

	var bad []apiTag
	getJSON(t, base+"/api/tags?quality=bad", &bad)
	if len(bad) != 1 || bad[0].Device != "Dead" || bad[0].Value != nil || bad[0].LastGoodT != nil {
		t.Errorf("bad tags while only Dead is down: %+v", bad)
	}

	// The broker's counters: a subscriber shows on /api/status and /metrics.
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + r.BrokerAddr()).SetClientID("hmi"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	c.Subscribe("pad/#", 1, nil).WaitTimeout(5 * time.Second)
	waitFor("the subscriber and the local births on /api/status", func() bool {
		var st struct {
			Local struct {
				Clients       int               `json:"clients"`
				Subscriptions int               `json:"subscriptions"`
				Messages      map[string]uint64 `json:"messages"`
			} `json:"local_broker"`
		}
		getJSON(t, base+"/api/status", &st)
		return st.Local.Clients == 1 && st.Local.Subscriptions == 1 && st.Local.Messages["NBIRTH"] >= 1
	})
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "wellgate_broker_subscriptions 1") {
		t.Errorf("/metrics has no wellgate_broker_subscriptions 1")
	}
	if !strings.Contains(string(body), `wellgate_sparkplug_messages_total{session="local",type="NBIRTH"}`) {
		t.Errorf("/metrics does not count the local NBIRTH")
	}

	// The PLC stops answering: Live's tag keeps its last good value, marked bad.
	_ = srv.Stop()
	waitFor("Live down", func() bool { return devices()["Live"].State == "down" })
	var tags []apiTag
	getJSON(t, base+"/api/tags?device=Live", &tags)
	if len(tags) != 1 || tags[0].Quality == "good" || tags[0].LastGood != "1234" || tags[0].LastGoodT == nil {
		t.Errorf("Live's tag after the PLC stopped: %+v, want bad with last good 1234", tags)
	}
}

// With [[web.user]] configured the page and its API need the password; /healthz stays open.
func TestStatusPageUsers(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("wellsite"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
[gateway]
data_dir = %q
[sparkplug]
group_id = "API"
edge_node_id = "Node"
[broker]
listen = "127.0.0.1:0"
[web]
listen = "127.0.0.1:0"
[[web.user]]
name = "tech"
password_hash = %q
`, t.TempDir(), hash)
	r := startGatewayN(t, writeTOML(t, t.TempDir(), src))
	t.Cleanup(r.stop)
	base := "http://" + r.WebAddr()
	get := func(path, user, pw string) int {
		req, _ := http.NewRequest("GET", base+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pw)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		path, user, pw string
		want           int
	}{
		{"/api/status", "", "", http.StatusUnauthorized},
		{"/api/status", "tech", "wrong", http.StatusUnauthorized},
		{"/api/status", "tech", "wellsite", http.StatusOK},
		{"/", "", "", http.StatusUnauthorized},
		{"/healthz", "", "", http.StatusOK},
	} {
		if got := get(c.path, c.user, c.pw); got != c.want {
			t.Errorf("GET %s as %q/%q = %d, want %d", c.path, c.user, c.pw, got, c.want)
		}
	}
}
