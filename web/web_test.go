package web

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestTagsJSON(t *testing.T) {
	base := serve(t, fixed(site()))
	body, h := get(t, base+"/api/tags")
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q", ct)
	}
	var tags []map[string]any
	if err := json.Unmarshal([]byte(body), &tags); err != nil {
		t.Fatal(err)
	}
	if len(tags) != 6 {
		t.Fatalf("%d tags, want 6", len(tags))
	}
	// The keys the gateway's and cmd's tests read keep their meaning.
	if tags[0]["tag"] != "Wellhead/Tubing Pressure" || tags[0]["value"] != 851.25 || tags[0]["quality"] != "good" ||
		tags[0]["device"] != `RTU "A"` || tags[0]["text"] != "851.25 psi" || tags[0]["units"] != "psi" {
		t.Errorf("good tag = %v", tags[0])
	}
	if tags[1]["value"] != nil || tags[1]["quality"] != "bad" || tags[1]["last_good_display"] != "12.50" ||
		tags[1]["last_good_timestamp"] != "2026-03-01T01:55:00.000Z" {
		t.Errorf("bad tag = %v", tags[1])
	}
}

func TestStatusPageListsTagsEscaped(t *testing.T) {
	base := serve(t, fixed(site()))
	body, h := get(t, base+"/")
	if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("content type %q", ct)
	}
	mustContain(t, "page", body,
		"Field / PAD-1", "v1.2.3", "up 1 h 30 min", "1 of 4 devices communicating · 1 down · 1 connecting · 1 disabled · 4 bad tags",
		"Wellhead/Tubing Pressure", "851.25 psi", `RTU &#34;A&#34;`, "online", "tls://scada:8883",
		"primary host SCADA online", "bdSeq 12", "last failure 1 h 1 min ago: not authorized: bad user name or password",
		"12 queued, 3.0 MiB, oldest 1 min 35 s", "3 dropped", "timeout 2", "12 ms",
		// the bad tag keeps its last value, marked, with its time
		`<tr class="bad">`, `<span class="v">12.50 ft</span><small class="lg">last good 5 min 0 s ago</small>`,
		`<span class="badge st-disabled">disabled</span>`, "10.0.0.5:502 unit 1",
		`illegal data address reading hr:49000 (1 register) for tag &#34;Bogus/Out Of Range&#34;`,
		// escaped, never markup
		"&lt;script&gt;alert(1)&lt;/script&gt;", "Flow &lt;b&gt;computer&lt;/b&gt;",
		// no inline script: only the embedded file
		`<script src="/static/status.js?v=`)
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<b>computer") {
		t.Error("a device-supplied string is rendered as markup")
	}
	if strings.Count(body, "<script") != 1 || strings.Contains(body, "style=") || strings.Contains(body, "<style") {
		t.Error("inline script or style in the page; the CSP forbids them")
	}
	// A device that never answered is not shown up, and has no response time.
	if !strings.Contains(body, `<span class="badge st-connecting">connecting</span></td>
<td data-l="Last good poll">never</td>
<td data-l="Response">—</td>`) {
		t.Errorf("the connecting device is not shown as never answered:\n%s", body)
	}
}

func TestPageFilterWithoutScript(t *testing.T) {
	base := serve(t, fixed(site()))
	body, _ := get(t, base+"/?bad=1")
	mustContain(t, "bad-only page", body, "Tank/Level", "Separator", "4 tags", `name="bad" value="1" checked`)
	if strings.Contains(body, "Wellhead/Tubing Pressure</span>") || strings.Contains(body, ">Pressure</span>") {
		t.Error("bad only lists a good tag or a disabled device's tag")
	}
	body, _ = get(t, base+"/?q=tubing")
	mustContain(t, "text filter", body, "Wellhead/Tubing Pressure", "1 tags")
}

func TestNoDevices(t *testing.T) {
	base := serve(t, fixed(Snapshot{Group: "G", EdgeNode: "E"}))
	body, _ := get(t, base+"/api/tags")
	if strings.TrimSpace(body) != "[]" {
		t.Errorf("tags of an empty gateway = %q, want []", body)
	}
	page, _ := get(t, base+"/")
	mustContain(t, "empty page", page, "No devices configured", "0 of 0 devices communicating", "Upstream not configured")
}

func TestListenErrorNamesAddress(t *testing.T) {
	s, err := New("127.0.0.1:0", fixed(site()), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = New(s.Addr().String(), fixed(site()), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), s.Addr().String()) {
		t.Fatalf("second listener: %v", err)
	}
}

func TestCloseWithoutRunReleasesPort(t *testing.T) {
	s, err := New("127.0.0.1:0", fixed(site()), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s2, err := New(addr, fixed(site()), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	s2.Close()
}
