package web

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// The event stream (/api/events, Server-Sent Events) keeps an open page live: a "full"
// event with everything when the page connects, then, once per update interval, a "diff"
// event with only what changed: the header when it changed, the devices that changed, and
// for each changed tag a short array. One hub computes the changes for every open page, so
// the cost grows with the tags that change, not with the pages open. API.md documents the
// events.

// streamBuffer is how many events a page may lag behind before it is dropped; the browser
// reconnects on its own and starts again from a full event.
const streamBuffer = 8

// keepAliveEvery is how often a quiet stream sends a comment, so that proxies and the
// browser see the connection alive.
const keepAliveEvery = 15 * time.Second

var errTooManyStreams = errors.New("too many open pages")

type hub struct {
	src   Source
	every time.Duration
	max   int
	now   func() time.Time

	mu      sync.Mutex
	clients map[*streamClient]struct{}
	base    *frame     // what every client has been sent, nil until the first client
	full    []byte     // the full event of base, encoded when a client first needs it
	spare   []tagState // the tag states of the frame before base, reused for the next

	// Counters for /metrics.
	events  atomic.Uint64 // events broadcast
	dropped atomic.Uint64 // clients dropped for falling behind
	bytes   atomic.Uint64 // event bytes written to clients, before compression
}

type streamClient struct {
	ch   chan []byte
	gone chan struct{} // closed when the hub drops the client
}

func newHub(src Source, every time.Duration, max int, now func() time.Time) *hub {
	return &hub{src: src, every: every, max: max, now: now, clients: map[*streamClient]struct{}{}}
}

// frame is the state the clients have been sent.
type frame struct {
	snap    Snapshot
	header  []byte     // the header's JSON (status without devices, without the clock)
	devices [][]byte   // each device's JSON
	tags    []tagState // every tag, in order; the names are in snap
}

// tagState is what changes in a tag.
type tagState struct {
	value     any
	display   string
	quality   string
	ts        int64 // unix ms; 0: never
	lgDisplay string
	lgTs      int64
}

// newFrame builds the frame of snap; it reuses reuse's memory when it is big enough.
func newFrame(snap Snapshot, reuse []tagState) *frame {
	f := &frame{snap: snap, devices: make([][]byte, 0, len(snap.Devices))}
	f.header, _ = json.Marshal(toStatusJSON(&snap, time.Time{}, false))
	n := 0
	for i := range snap.Devices {
		n += len(snap.Devices[i].Tags)
	}
	if cap(reuse) >= n {
		f.tags = reuse[:0]
	} else {
		f.tags = make([]tagState, 0, n)
	}
	for i := range snap.Devices {
		d := &snap.Devices[i]
		b, _ := json.Marshal(toDeviceJSON(d))
		f.devices = append(f.devices, b)
		for _, t := range d.Tags {
			f.tags = append(f.tags, tagState{value: t.Value, display: t.Display, quality: t.Quality,
				ts: unixMs(t.Time), lgDisplay: t.LastGoodDisplay, lgTs: unixMs(t.LastGoodTime)})
		}
	}
	return f
}

func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// sameShape reports whether a and b have the same devices and tags in the same order, so
// that a diff by index means the same tags.
func sameShape(a, b *frame) bool {
	if len(a.tags) != len(b.tags) || len(a.snap.Devices) != len(b.snap.Devices) {
		return false
	}
	for i := range a.snap.Devices {
		da, db := &a.snap.Devices[i], &b.snap.Devices[i]
		if da.Name != db.Name || len(da.Tags) != len(db.Tags) {
			return false
		}
		for j := range da.Tags {
			if da.Tags[j].Name != db.Tags[j].Name {
				return false
			}
		}
	}
	return true
}

// subscribe adds a client and returns the full event to send it first.
func (h *hub) subscribe() (*streamClient, []byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) >= h.max {
		return nil, nil, errTooManyStreams
	}
	if h.base == nil || len(h.clients) == 0 { // nobody kept base current
		h.base, h.full = newFrame(h.src.Snapshot(), nil), nil
	}
	if h.full == nil {
		h.full = fullEvent(h.base, h.now())
	}
	c := &streamClient{ch: make(chan []byte, streamBuffer), gone: make(chan struct{})}
	h.clients[c] = struct{}{}
	return c, h.full, nil
}

func (h *hub) unsubscribe(c *streamClient) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}

func (h *hub) streams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// run ticks until stop is closed.
func (h *hub) run(stop <-chan struct{}) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			h.tick()
		}
	}
}

// tick takes a snapshot and sends every client what changed since the last one.
func (h *hub) tick() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) == 0 {
		return
	}
	next := newFrame(h.src.Snapshot(), h.spare)
	now := h.now()
	var ev []byte
	if h.base == nil || !sameShape(h.base, next) {
		ev = fullEvent(next, now)
	} else {
		ev = diffEvent(h.base, next, now)
	}
	if h.base != nil {
		h.spare = h.base.tags
	}
	h.base, h.full = next, nil
	if ev == nil {
		return
	}
	h.events.Add(1)
	for c := range h.clients {
		select {
		case c.ch <- ev:
		default: // fell behind: drop it; it reconnects and starts from a full event
			delete(h.clients, c)
			close(c.gone)
			h.dropped.Add(1)
		}
	}
}

// fullEvent is everything: {"t": server ms, "status": /api/status, "tags": /api/tags}.
func fullEvent(f *frame, now time.Time) []byte {
	type full struct {
		T      int64      `json:"t"`
		Status statusJSON `json:"status"`
		Tags   []tagJSON  `json:"tags"`
	}
	out := full{T: now.UnixMilli(), Status: toStatusJSON(&f.snap, now, true), Tags: make([]tagJSON, 0, len(f.tags))}
	for i := range f.snap.Devices {
		for j := range f.snap.Devices[i].Tags {
			out.Tags = append(out.Tags, toTagJSON(&f.snap.Devices[i].Tags[j]))
		}
	}
	b, err := json.Marshal(out)
	if err != nil { // a value JSON cannot hold: send the tags without values rather than nothing
		for i := range out.Tags {
			if _, err := json.Marshal(out.Tags[i].Value); err != nil {
				out.Tags[i].Value = nil
			}
		}
		b, _ = json.Marshal(out)
	}
	return sseEvent("full", b)
}

// diffEvent is what changed from a to b, nil when nothing did:
//
//	{"t": server ms,
//	 "status": header (as /api/status without devices), when it changed,
//	 "devices": [[index, device as /api/devices], …] of the devices that changed,
//	 "tags": [[index, display, quality, age ms | null], …] of the good tags that changed,
//	         [index, display, quality, age ms | null, last good display | null, last good age ms | null]
//	         of the others}
//
// Ages are counted back from "t", which keeps the numbers short. The raw value is left out:
// the page shows the display text and sorts by it, and the value would double the bytes (a
// float's full digits beside its display).
func diffEvent(a, b *frame, now time.Time) []byte {
	t := now.UnixMilli()
	buf := make([]byte, 0, 256)
	buf = append(buf, `{"t":`...)
	buf = strconv.AppendInt(buf, t, 10)
	changed := false
	if string(a.header) != string(b.header) {
		buf = append(buf, `,"status":`...)
		buf = append(buf, b.header...)
		changed = true
	}
	first := true
	for i := range b.devices {
		if string(a.devices[i]) == string(b.devices[i]) {
			continue
		}
		if first {
			buf = append(buf, `,"devices":[`...)
			first = false
		} else {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, ',')
		buf = append(buf, b.devices[i]...)
		buf = append(buf, ']')
	}
	if !first {
		buf = append(buf, ']')
		changed = true
	}
	first = true
	for i := range b.tags {
		x, y := &a.tags[i], &b.tags[i]
		if x.display == y.display && x.quality == y.quality && x.ts == y.ts && x.lgDisplay == y.lgDisplay &&
			x.lgTs == y.lgTs && sameValue(x.value, y.value) {
			continue
		}
		if first {
			buf = append(buf, `,"tags":[`...)
			first = false
		} else {
			buf = append(buf, ',')
		}
		buf = appendTagDiff(buf, i, y, t)
	}
	if !first {
		buf = append(buf, ']')
		changed = true
	}
	if !changed {
		return nil
	}
	buf = append(buf, '}')
	return sseEvent("diff", buf)
}

func appendTagDiff(buf []byte, i int, s *tagState, t int64) []byte {
	buf = append(buf, '[')
	buf = strconv.AppendInt(buf, int64(i), 10)
	buf = append(buf, ',')
	buf = appendString(buf, s.display)
	buf = append(buf, ',')
	buf = appendString(buf, s.quality)
	buf = append(buf, ',')
	buf = appendAge(buf, s.ts, t)
	if s.quality != QualityGood {
		buf = append(buf, ',')
		if s.lgDisplay == "" {
			buf = append(buf, "null"...)
		} else {
			buf = appendString(buf, s.lgDisplay)
		}
		buf = append(buf, ',')
		buf = appendAge(buf, s.lgTs, t)
	}
	return append(buf, ']')
}

func appendAge(buf []byte, ts, t int64) []byte {
	if ts == 0 {
		return append(buf, "null"...)
	}
	return strconv.AppendInt(buf, t-ts, 10)
}

// sameValue compares two tag values without panicking on values that are not comparable.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || math.IsNaN(x) && math.IsNaN(y))
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case uint64:
		y, ok := b.(uint64)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	}
	xb, err1 := json.Marshal(a)
	yb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(xb) == string(yb)
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf = append(buf, '\\', c)
			case c < 0x20:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				buf = append(buf, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, `\ufffd`...)
		} else {
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return append(buf, '"')
}

func sseEvent(name string, data []byte) []byte {
	out := make([]byte, 0, len(name)+len(data)+16)
	out = append(out, "event: "...)
	out = append(out, name...)
	out = append(out, "\ndata: "...)
	out = append(out, data...)
	return append(out, "\n\n"...)
}

// events serves the event stream of one open page.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	c, full, err := s.hub.subscribe()
	if err != nil {
		s.lim.Log(s.log, 0, "streams", "event stream refused", "err", err, "max", s.opts.MaxStreams)
		w.Header().Set("Retry-After", "10")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer s.hub.unsubscribe(c)
	rc := http.NewResponseController(w)
	// The request has been read; the read deadline would otherwise end the stream.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(parts ...[]byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		for _, p := range parts {
			if _, err := w.Write(p); err != nil {
				return false
			}
			s.hub.bytes.Add(uint64(len(p)))
		}
		return rc.Flush() == nil
	}
	if !send([]byte("retry: 2000\n\n"), full) {
		return
	}
	keep := time.NewTicker(keepAliveEvery)
	defer keep.Stop()
	for {
		var ok bool
		select {
		case ev := <-c.ch:
			ok = send(ev)
		case <-keep.C:
			ok = send([]byte(": keep-alive\n\n"))
		case <-c.gone:
			return
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		}
		if !ok {
			return
		}
	}
}
