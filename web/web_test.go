package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

type fixed Snapshot

func (f fixed) Snapshot() Snapshot { return Snapshot(f) }

var snap = Snapshot{
	Group: "Field", EdgeNode: "PAD-1", Version: "test", Started: time.Now().Add(-time.Minute),
	Upstream: Upstream{Enabled: true, Connected: true, State: "online", Server: "tcp://up:1883", Queued: 12, Dropped: 3},
	Devices: []Device{{
		Name: `RTU "A"`, Driver: "modbus-tcp", Up: true, Requests: 10, Errors: 2,
		ErrorsByKind: map[string]uint64{"timeout": 2}, ResponseTime: 12 * time.Millisecond,
		Tags: []Tag{
			{Device: `RTU "A"`, Name: "Wellhead/Tubing Pressure", Type: "Float", Value: 851.25, Display: "851.25", Quality: "good", Units: "psi"},
			{Device: `RTU "A"`, Name: "Tank/Level", Type: "Float", Value: nil, Display: "—", Quality: "bad"},
		},
	}},
}

func serve(t *testing.T, src Source) string {
	t.Helper()
	s, err := New("127.0.0.1:0", src, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return "http://" + s.Addr().String()
}

func get(t *testing.T, url string) (string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b), resp.Header.Get("Content-Type")
}

func TestTagsJSON(t *testing.T) {
	base := serve(t, fixed(snap))
	body, ct := get(t, base+"/api/tags")
	if !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q", ct)
	}
	var tags []Tag
	if err := json.Unmarshal([]byte(body), &tags); err != nil {
		t.Fatal(err)
	}
	if len(tags) != 2 || tags[0].Name != "Wellhead/Tubing Pressure" || tags[0].Value != 851.25 ||
		tags[0].Quality != "good" || tags[1].Value != nil || tags[1].Quality != "bad" {
		t.Errorf("tags = %+v", tags)
	}
}

func TestStatusPageListsTagsEscaped(t *testing.T) {
	base := serve(t, fixed(snap))
	body, _ := get(t, base+"/")
	for _, want := range []string{"Wellhead/Tubing Pressure", "851.25", "psi", `RTU &#34;A&#34;`, "online", "12 samples queued", "3 dropped", "timeout 2", "response 12ms"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestMetrics(t *testing.T) {
	base := serve(t, fixed(snap))
	body, _ := get(t, base+"/metrics")
	for _, want := range []string{
		`wellgate_device_up{device="RTU \"A\""} 1`,
		`wellgate_device_errors_total{device="RTU \"A\""} 2`,
		`wellgate_device_tags_good{device="RTU \"A\""} 1`,
		"wellgate_upstream_connected 1", "wellgate_queue_samples 12", "wellgate_queue_dropped_total 3",
		`wellgate_device_errors_by_kind_total{device="RTU \"A\"",kind="timeout"} 2`,
		`wellgate_device_response_seconds{device="RTU \"A\""} 0.012`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

func TestNoDevices(t *testing.T) {
	base := serve(t, fixed(Snapshot{Group: "G", EdgeNode: "E"}))
	body, _ := get(t, base+"/api/tags")
	if strings.TrimSpace(body) != "[]" {
		t.Errorf("tags of an empty gateway = %q, want []", body)
	}
	page, _ := get(t, base+"/")
	if !strings.Contains(page, "No devices configured") {
		t.Error("empty page does not say so")
	}
}

func TestListenErrorNamesAddress(t *testing.T) {
	s, err := New("127.0.0.1:0", fixed(snap), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.ln.Close()
	_, err = New(s.Addr().String(), fixed(snap), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), s.Addr().String()) {
		t.Fatalf("second listener: %v", err)
	}
}
