package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	return v
}

func TestStatusJSON(t *testing.T) {
	base := serve(t, fixed(site()))
	body, _ := get(t, base+"/api/status")
	st := decode[map[string]any](t, body)
	up := st["upstream"].(map[string]any)
	sum := st["summary"].(map[string]any)
	if st["group"] != "Field" || st["edge_node"] != "PAD-1" || st["version"] != "v1.2.3" ||
		st["started"] != "2026-03-01T00:30:00.000Z" || st["uptime_s"] != 5400.0 || st["healthy"] != true ||
		st["broker"] != "127.0.0.1:1883" {
		t.Errorf("header = %v", st)
	}
	if up["state"] != "online" || up["server"] != "tls://scada:8883" || up["bdseq"] != 12.0 ||
		up["last_error"] != "not authorized: bad user name or password" || up["last_error_at"] != "2026-03-01T00:59:00.000Z" ||
		up["primary_host_state"] != "online" || up["queued"] != 12.0 || up["queue_bytes"] != float64(3<<20) ||
		up["queue_oldest_s"] != 95.0 || up["dropped"] != 3.0 {
		t.Errorf("upstream = %v", up)
	}
	if sum["devices"] != 4.0 || sum["tags"] != 6.0 || sum["bad_tags"] != 4.0 ||
		sum["by_state"].(map[string]any)["communicating"] != 1.0 {
		t.Errorf("summary = %v", sum)
	}
	if _, ok := st["tags"]; ok {
		t.Error("/api/status carries the tags; they are /api/tags's")
	}
	if devs := st["devices"].([]any); len(devs) != 4 {
		t.Errorf("/api/status has %d devices, want 4", len(devs))
	}
}

// "Never" is null, not year 1 nor 0.
func TestNeverIsNull(t *testing.T) {
	s := site()
	s.Upstream.Queued, s.Upstream.LastError, s.Upstream.LastErrorAt = 0, "", time.Time{}
	base := serve(t, fixed(s))
	body, _ := get(t, base+"/api/devices")
	if strings.Contains(body, "0001-01-01") {
		t.Errorf("year 1 in /api/devices:\n%s", body)
	}
	devs := decode[[]map[string]any](t, body)
	fc := devs[1]
	if fc["name"] != "Flow <b>computer</b>" || fc["state"] != "connecting" || fc["up"] != false {
		t.Fatalf("device 1 = %v", fc)
	}
	for _, k := range []string{"last_good", "response_time_ns", "last_error_at", "state_since"} {
		if v, ok := fc[k]; !ok || v != nil {
			t.Errorf("never-answered device: %s = %v, want null", k, v)
		}
	}
	if devs[0]["response_time_ns"] != 12e6 || devs[0]["last_good"] != "2026-03-01T01:59:58.000Z" || devs[0]["tags_bad"] != 2.0 {
		t.Errorf("device 0 = %v", devs[0])
	}
	if devs[3]["state"] != "disabled" || devs[3]["tags_bad"] != 0.0 {
		t.Errorf("disabled device = %v", devs[3])
	}
	tags := decode[[]map[string]any](t, mustGet(t, base+"/api/tags?q=script"))
	if len(tags) != 1 {
		t.Fatalf("q=script: %v", tags)
	}
	for _, k := range []string{"value", "timestamp", "last_good_timestamp"} {
		if v, ok := tags[0][k]; !ok || v != nil {
			t.Errorf("never-read tag: %s = %v, want null", k, v)
		}
	}
	st := decode[map[string]any](t, mustGet(t, base+"/api/status"))
	up := st["upstream"].(map[string]any)
	if up["queue_oldest_s"] != nil || up["last_error_at"] != nil {
		t.Errorf("empty queue's oldest age or no failure's time not null: %v", up)
	}
}

func mustGet(t *testing.T, url string) string {
	t.Helper()
	b, _ := get(t, url)
	return b
}

func TestTagFilters(t *testing.T) {
	base := serve(t, fixed(site()))
	names := func(q string) []string {
		var out []string
		for _, tg := range decode[[]map[string]any](t, mustGet(t, base+"/api/tags"+q)) {
			out = append(out, tg["device"].(string)+"|"+tg["tag"].(string))
		}
		return out
	}
	for _, c := range []struct {
		q    string
		want string
	}{
		{"?device=Separator", "Separator|Level"},
		{"?device=" + urlq(`RTU "A"`) + "&quality=good", `RTU "A"|Wellhead/Tubing Pressure`},
		{"?quality=bad", `RTU "A"|Tank/Level,RTU "A"|<script>alert(1)</script>,Flow <b>computer</b>|Gas/Rate,Separator|Level`},
		{"?q=TANK", `RTU "A"|Tank/Level`},
		{"?q=hr:40003", `RTU "A"|Tank/Level`},
		{"?q=flow", "Flow <b>computer</b>|Gas/Rate"},
		{"?device=nope", ""},
	} {
		if got := strings.Join(names(c.q), ","); got != c.want {
			t.Errorf("/api/tags%s = %s, want %s", c.q, got, c.want)
		}
	}
	if _, _, code := fetch(t, base+"/api/tags?quality=great", nil); code != 400 {
		t.Errorf("quality=great: %d, want 400", code)
	}
}

func urlq(s string) string { return strings.NewReplacer(" ", "%20", `"`, "%22").Replace(s) }

func TestHealthz(t *testing.T) {
	src := newFake(site())
	base := "http://" + serveOpts(t, Options{}, src).Addr().String()
	if body, _, code := fetch(t, base+"/healthz", nil); code != 200 || body != "ok\n" {
		t.Errorf("healthy: %d %q", code, body)
	}
	src.update(func(s *Snapshot) { s.Health = []string{"upstream bridge: stopped: disk full"} })
	if body, _, code := fetch(t, base+"/healthz", nil); code != 503 || body != "upstream bridge: stopped: disk full\n" {
		t.Errorf("failed part: %d %q", code, body)
	}
	mustContain(t, "page", mustGet(t, base+"/"), "upstream bridge: stopped: disk full")
	st := decode[map[string]any](t, mustGet(t, base+"/api/status"))
	if st["healthy"] != false {
		t.Errorf("/api/status healthy = %v", st["healthy"])
	}
}

func TestReadOnly(t *testing.T) {
	base := serve(t, fixed(site()))
	for _, path := range []string{"/", "/api/tags", "/api/status"} {
		resp, err := http.Post(base+path, "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 {
			t.Errorf("POST %s: %d, want 405", path, resp.StatusCode)
		}
	}
}
