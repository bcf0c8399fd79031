package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The JSON API: /api/status, /api/devices, /api/tags, and /healthz. API.md documents them.

func (s *Server) apiStatus(w http.ResponseWriter, _ *http.Request) {
	snap := s.src.Snapshot()
	writeJSON(w, toStatusJSON(&snap, s.now(), true))
}

func (s *Server) apiDevices(w http.ResponseWriter, _ *http.Request) {
	snap := s.src.Snapshot()
	writeJSON(w, toDevicesJSON(snap.Devices))
}

func (s *Server) apiTags(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	snap := s.src.Snapshot()
	out := []tagJSON{}
	f.each(&snap, func(_ *Device, t *Tag) bool {
		out = append(out, toTagJSON(t))
		return true
	})
	writeJSON(w, out)
}

// healthz answers 200 "ok" when no part has failed, 503 with the failed parts otherwise.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	snap := s.src.Snapshot()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(snap.Health) == 0 {
		fmt.Fprintln(w, "ok")
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	for _, h := range snap.Health {
		fmt.Fprintln(w, strings.ReplaceAll(h, "\n", " "))
	}
}

// filter selects tags, for /api/tags and the page without script: device (exact name),
// quality ("good", or "bad": see BadTag) and q (case-insensitive text in the device name,
// tag name or address).
type filter struct {
	device  string
	quality string
	q       string
}

func parseFilter(r *http.Request) (filter, error) {
	v := r.URL.Query()
	f := filter{device: v.Get("device"), quality: v.Get("quality"), q: strings.ToLower(strings.TrimSpace(v.Get("q")))}
	if v.Get("bad") != "" && f.quality == "" { // the page's "bad only" checkbox
		f.quality = "bad"
	}
	if f.quality != "" && f.quality != "bad" && f.quality != QualityGood {
		return f, fmt.Errorf("quality %q: want good or bad", f.quality)
	}
	return f, nil
}

func (f filter) match(d *Device, t *Tag) bool {
	switch {
	case f.device != "" && d.Name != f.device:
		return false
	case f.quality == "bad" && !BadTag(d, *t):
		return false
	case f.quality == QualityGood && !t.Good():
		return false
	case f.q != "" && !strings.Contains(strings.ToLower(t.Name), f.q) &&
		!strings.Contains(strings.ToLower(d.Name), f.q) && !strings.Contains(strings.ToLower(t.Address), f.q):
		return false
	}
	return true
}

// each calls fn for every tag of snap that f matches, in configuration order, until fn
// returns false.
func (f filter) each(snap *Snapshot, fn func(*Device, *Tag) bool) {
	for i := range snap.Devices {
		d := &snap.Devices[i]
		if f.device != "" && d.Name != f.device {
			continue
		}
		for j := range d.Tags {
			if f.match(d, &d.Tags[j]) && !fn(d, &d.Tags[j]) {
				return
			}
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// now is the server's clock, replaceable in tests.
func (s *Server) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}
