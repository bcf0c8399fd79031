package web

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

type sseEventMsg struct {
	name string
	data string
}

// sseClient reads the event stream of base.
type sseClient struct {
	t      *testing.T
	resp   *http.Response
	events chan sseEventMsg
}

func openStream(t *testing.T, base string, gz bool) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/events", nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	tr := &http.Transport{DisableCompression: true}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		cancel()
		t.Fatalf("events: %d %v", resp.StatusCode, resp.Header)
	}
	c := &sseClient{t: t, resp: resp, events: make(chan sseEventMsg, 64)}
	var body io.Reader = resp.Body
	if gz {
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("stream not compressed: %v", resp.Header)
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	}
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(body)
		sc.Buffer(nil, 16<<20)
		var ev sseEventMsg
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					c.events <- ev
				}
				ev = sseEventMsg{}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			}
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close(); tr.CloseIdleConnections() })
	return c
}

func (c *sseClient) next(want string) map[string]any {
	c.t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			c.t.Fatalf("stream ended waiting for %q", want)
		}
		if ev.name != want {
			c.t.Fatalf("event %q, want %q: %s", ev.name, want, ev.data)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
			c.t.Fatalf("%s event: %v in %s", ev.name, err, ev.data)
		}
		return m
	case <-time.After(10 * time.Second):
		c.t.Fatalf("no %q event within 10 s", want)
	}
	return nil
}

func TestStreamSendsFullThenOnlyChanges(t *testing.T) {
	for _, gz := range []bool{false, true} {
		src := newFake(site())
		s := serveOpts(t, Options{UpdateInterval: 20 * time.Millisecond}, src)
		c := openStream(t, "http://"+s.Addr().String(), gz)
		full := c.next("full")
		if tags := full["tags"].([]any); len(tags) != 6 {
			t.Fatalf("full event has %d tags", len(tags))
		}
		if full["status"].(map[string]any)["devices"] == nil || full["t"] != float64(t0.UnixMilli()) {
			t.Errorf("full event = %v", full)
		}
		// One tag changes value; the separator comes back.
		src.update(func(s *Snapshot) {
			s.Devices[0].Tags[0].Value, s.Devices[0].Tags[0].Display = 852.0, "852.00"
			s.Devices[0].Tags[0].Time = t0.Add(-500 * time.Millisecond)
		})
		d := c.next("diff")
		if _, ok := d["status"]; ok {
			t.Errorf("header resent though unchanged: %v", d)
		}
		if _, ok := d["devices"]; ok {
			t.Errorf("devices resent though unchanged: %v", d)
		}
		tags := d["tags"].([]any)
		if len(tags) != 1 {
			t.Fatalf("diff has %d tags, want 1: %v", len(tags), d)
		}
		if got := tags[0].([]any); len(got) != 4 || got[0] != 0.0 || got[1] != "852.00" || got[2] != "good" || got[3] != 500.0 {
			t.Errorf("changed good tag = %v, want [0 852.00 good 500]", got)
		}
		// A device goes down: its tag goes bad and keeps its last good value.
		src.update(func(s *Snapshot) {
			s.Devices[0].State, s.Devices[0].Up = StateDown, false
			s.Devices[0].Tags[0].Value, s.Devices[0].Tags[0].Display, s.Devices[0].Tags[0].Quality = nil, "", "bad"
			s.Devices[0].Tags[0].Time = t0.Add(-time.Second)
			s.Devices[0].Tags[0].LastGoodDisplay, s.Devices[0].Tags[0].LastGoodTime = "852.00", t0.Add(-500*time.Millisecond)
		})
		d = c.next("diff")
		if st := d["status"].(map[string]any); st["summary"].(map[string]any)["bad_tags"] != 5.0 {
			t.Errorf("summary after the change = %v", st["summary"])
		}
		devs := d["devices"].([]any)
		if dev := devs[0].([]any); len(devs) != 1 || dev[0] != 0.0 || dev[1].(map[string]any)["state"] != "down" {
			t.Errorf("devices = %v", devs)
		}
		if got := d["tags"].([]any)[0].([]any); len(got) != 6 || got[1] != "" || got[2] != "bad" || got[3] != 1000.0 || got[4] != "852.00" || got[5] != 500.0 {
			t.Errorf("bad tag = %v, want [0 \"\" bad 1000 852.00 500]", got)
		}
		// Nothing changes: no event but keep-alives.
		select {
		case ev := <-c.events:
			t.Errorf("event without a change: %v", ev)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestStreamNewTagSetSendsFull(t *testing.T) {
	src := newFake(site())
	s := serveOpts(t, Options{UpdateInterval: 20 * time.Millisecond}, src)
	c := openStream(t, "http://"+s.Addr().String(), false)
	c.next("full")
	src.update(func(s *Snapshot) { s.Devices = s.Devices[:1] })
	if full := c.next("full"); len(full["tags"].([]any)) != 3 {
		t.Errorf("after a reload of the configuration: %v", full)
	}
}

func TestStreamsBounded(t *testing.T) {
	s := serveOpts(t, Options{MaxStreams: 2}, fixed(site()))
	base := "http://" + s.Addr().String()
	openStream(t, base, false).next("full")
	openStream(t, base, false).next("full")
	if _, h, code := fetch(t, base+"/api/events", nil); code != 503 || h.Get("Retry-After") == "" {
		t.Errorf("third page: %d %v", code, h)
	}
}

// A page that does not read its stream is dropped rather than buffered without end.
func TestSlowStreamDropped(t *testing.T) {
	src := newFake(site())
	h := newHub(src, time.Hour, 4, func() time.Time { return t0 })
	c, _, err := h.subscribe()
	if err != nil {
		t.Fatal(err)
	}
	for i := range streamBuffer + 1 {
		src.update(func(s *Snapshot) { s.Devices[0].Tags[0].Value = float64(i) })
		h.tick()
	}
	select {
	case <-c.gone:
	default:
		t.Fatal("a client that never reads is still subscribed")
	}
	if h.dropped.Load() != 1 || h.streams() != 0 {
		t.Errorf("dropped %d, streams %d", h.dropped.Load(), h.streams())
	}
}

// Close ends open streams at once rather than waiting for the shutdown timeout.
func TestCloseEndsStreams(t *testing.T) {
	s, err := New("127.0.0.1:0", fixed(site()), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	c := openStream(t, "http://"+s.Addr().String(), false)
	c.next("full")
	start := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run took %v to return with a page open", d)
	}
}

func TestAppendStringIsJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "nl\ntab\tcr\r\x00\x1f", "ü€😀", "bad\xffutf8", "<script>&</script>", "\u2028"} {
		var got string
		if err := json.Unmarshal(appendString(nil, s), &got); err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		want, _ := json.Marshal(s)
		var w string
		_ = json.Unmarshal(want, &w)
		if got != w {
			t.Errorf("%q: decoded %q, want %q", s, got, w)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff", "\u2028", "x\ny"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		if strings.ContainsAny(string(b), "\n\r") {
			t.Fatalf("raw newline in %q: would split the SSE data line", b)
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		want, _ := json.Marshal(s)
		var w string
		_ = json.Unmarshal(want, &w)
		if got != w {
			t.Fatalf("%q: decoded %q, want %q", s, got, w)
		}
	})
}

func TestSameValue(t *testing.T) {
	nan := 0.0
	nan /= nan
	if !sameValue([]int{1}, []int{1}) || sameValue([]int{1}, []int{2}) || sameValue(1.0, int64(1)) || !sameValue(nan, nan) ||
		!sameValue(nil, nil) || sameValue(nil, 0.0) || sameValue(make(chan int), make(chan int)) {
		t.Error("sameValue")
	}
}
