package web

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// metrics serves the snapshot in the Prometheus text format, for a site historian or an
// exporter scraping the box.
func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	writeMetrics(w, s.src.Snapshot(), time.Now())
}

func writeMetrics(w io.Writer, snap Snapshot, now time.Time) {
	fmt.Fprintf(w, "# HELP wellgate_uptime_seconds Seconds since the gateway started.\n# TYPE wellgate_uptime_seconds gauge\n")
	fmt.Fprintf(w, "wellgate_uptime_seconds %d\n", int64(now.Sub(snap.Started).Seconds()))
	fmt.Fprintf(w, "# HELP wellgate_upstream_connected Whether the upstream broker session is live.\n# TYPE wellgate_upstream_connected gauge\n")
	fmt.Fprintf(w, "wellgate_upstream_connected %d\n", b2i(snap.Upstream.Connected))
	fmt.Fprintf(w, "# HELP wellgate_queue_samples Samples waiting in store-and-forward.\n# TYPE wellgate_queue_samples gauge\n")
	fmt.Fprintf(w, "wellgate_queue_samples %d\n", snap.Upstream.Queued)
	fmt.Fprintf(w, "# HELP wellgate_queue_dropped_total Samples the store-and-forward queue dropped or refused.\n# TYPE wellgate_queue_dropped_total counter\n")
	fmt.Fprintf(w, "wellgate_queue_dropped_total %d\n", snap.Upstream.Dropped)
	families := []struct {
		name, help, typ string
		val             func(Device) uint64
	}{
		{"wellgate_device_up", "Whether the device is communicating.", "gauge", func(d Device) uint64 { return uint64(b2i(d.Up)) }},
		{"wellgate_device_requests_total", "Requests sent to the device.", "counter", func(d Device) uint64 { return d.Requests }},
		{"wellgate_device_errors_total", "Failed requests to the device.", "counter", func(d Device) uint64 { return d.Errors }},
		{"wellgate_device_tags_good", "Tags of the device with good quality.", "gauge", func(d Device) uint64 { return goodTags(d) }},
		{"wellgate_device_tags", "Tags of the device.", "gauge", func(d Device) uint64 { return uint64(len(d.Tags)) }},
	}
	for _, f := range families {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		for _, d := range snap.Devices {
			fmt.Fprintf(w, "%s{device=\"%s\"} %d\n", f.name, escapeLabel(d.Name), f.val(d))
		}
	}
	fmt.Fprintf(w, "# HELP wellgate_device_errors_by_kind_total Failed requests by kind.\n# TYPE wellgate_device_errors_by_kind_total counter\n")
	for _, d := range snap.Devices {
		for _, kind := range slices.Sorted(maps.Keys(d.ErrorsByKind)) {
			fmt.Fprintf(w, "wellgate_device_errors_by_kind_total{device=\"%s\",kind=\"%s\"} %d\n",
				escapeLabel(d.Name), escapeLabel(kind), d.ErrorsByKind[kind])
		}
	}
	fmt.Fprintf(w, "# HELP wellgate_device_response_seconds Response time of the last good request.\n# TYPE wellgate_device_response_seconds gauge\n")
	for _, d := range snap.Devices {
		fmt.Fprintf(w, "wellgate_device_response_seconds{device=\"%s\"} %g\n", escapeLabel(d.Name), d.ResponseTime.Seconds())
	}
}

func goodTags(d Device) uint64 {
	n := uint64(0)
	for _, t := range d.Tags {
		if t.Quality == "good" {
			n++
		}
	}
	return n
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
