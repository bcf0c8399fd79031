package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The page: rendered on the server (so that it shows everything at once, and works without
// script: the filter form is a plain GET form), then kept live by status.js from the event
// stream. Every string from a device or the configuration goes through html/template on the
// server and textContent in the script: never markup.

//go:embed status.html static
var files embed.FS

// pageRows is how many tag rows the page renders at first; the script shows more on demand.
const pageRows = 200

var pageTmpl = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"stamp":   stampText,
	"ago":     func(t, now time.Time) string { return agoText(t, now) },
	"uptime":  func(t, now time.Time) string { return durationText(now.Sub(t)) },
	"dur":     durationText,
	"ms":      func(d time.Duration) string { return msText(d) },
	"bytes":   bytesText,
	"num":     func(n int) string { return groupDigits(strconv.Itoa(n)) },
	"asset":   assetURL,
	"summary": summaryText,
}).ParseFS(files, "status.html"))

type pageData struct {
	Snapshot
	Now      time.Time
	Summary  Summary
	Q        string // the filter's text
	Device   string // the filter's device
	Bad      bool   // the "bad only" box is ticked
	Rows     []pageRow
	Matching int // tags the filter matches
}

type pageRow struct {
	Tag
	Bad   bool // BadTag
	State string
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	snap := s.src.Snapshot()
	d := pageData{Snapshot: snap, Now: s.now(), Summary: snap.Summarize(),
		Q: r.URL.Query().Get("q"), Device: f.device, Bad: f.quality == "bad"}
	f.each(&snap, func(dev *Device, t *Tag) bool {
		d.Matching++
		if len(d.Rows) < pageRows {
			d.Rows = append(d.Rows, pageRow{Tag: *t, Bad: !t.Good(), State: dev.EffectiveState()})
		}
		return true
	})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := pageTmpl.Execute(w, d); err != nil {
		s.log.Warn("render status page", "err", err)
	}
}

// The embedded script and style, served with a content hash in their address so that they
// can be cached for good, and compressed once at start.
type asset struct {
	body, gz []byte
	typ      string
	hash     string
}

var assets = loadAssets("status.js", "status.css")

func loadAssets(names ...string) map[string]*asset {
	out := map[string]*asset{}
	for _, n := range names {
		b, err := files.ReadFile("static/" + n)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		typ := "text/css; charset=utf-8"
		if strings.HasSuffix(n, ".js") {
			typ = "text/javascript; charset=utf-8"
		}
		out[n] = &asset{body: b, gz: gzipBytes(b), typ: typ, hash: hex.EncodeToString(sum[:6])}
	}
	return out
}

func assetURL(name string) string { return "/static/" + name + "?v=" + assets[name].hash }

func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	a := assets[r.PathValue("file")]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.typ)
	h.Set("ETag", `"`+a.hash+`"`)
	if r.URL.Query().Get("v") == a.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if r.Header.Get("If-None-Match") == `"`+a.hash+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// Text for people, shared by the template (the script has its own copies).

func stampText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func agoText(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	return durationText(d) + " ago"
}

// durationText is a duration in at most two units: "45 s", "12 min 5 s", "3 h 4 min", "2 d 5 h".
func durationText(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%d s", s)
	case s < 3600:
		return fmt.Sprintf("%d min %d s", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%d h %d min", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%d d %d h", s/86400, s%86400/3600)
}

func msText(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if ms < 10 {
		return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
}

func bytesText(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}

func groupDigits(s string) string {
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// summaryText is the summary line: "48 of 50 devices communicating · 1 down · 12 bad tags".
func summaryText(s Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d devices communicating", s.ByState[StateCommunicating], s.Devices)
	for _, st := range []string{StateDegraded, StateDown, StateConnecting, StateDisabled} {
		if n := s.ByState[st]; n > 0 {
			fmt.Fprintf(&b, " · %d %s", n, st)
		}
	}
	bad := "bad tags"
	if s.BadTags == 1 {
		bad = "bad tag"
	}
	fmt.Fprintf(&b, " · %s %s", groupDigits(strconv.Itoa(s.BadTags)), bad)
	return b.String()
}
