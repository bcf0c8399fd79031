package web

import (
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	body, h := get(t, base+"/metrics")
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// series renders a family's samples as `{labels} value` lines, sorted.
func series(f *dto.MetricFamily) []string {
	if f == nil {
		return nil
	}
	var out []string
	for _, m := range f.Metric {
		var ls []string
		for _, l := range m.Label {
			ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		var v float64
		switch {
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Histogram != nil:
			v = float64(m.Histogram.GetSampleCount())
		}
		out = append(out, fmt.Sprintf("{%s} %g", strings.Join(ls, ","), v))
	}
	sort.Strings(out)
	return out
}

func TestMetrics(t *testing.T) {
	s := site()
	s.Devices[0].Latency.Observe(3 * time.Millisecond)
	s.Devices[0].Latency.Observe(12 * time.Millisecond)
	s.Devices[0].Latency.Observe(7 * time.Second)
	base := serve(t, fixed(s))
	fams := scrape(t, base)
	want := map[string][]string{
		"wellgate_device_up":                             {`{device="Flow <b>computer</b>"} 0`, `{device="RTU \"A\""} 1`, `{device="Separator"} 0`, `{device="Spare"} 0`},
		"wellgate_device_errors_total":                   {`{device="Flow <b>computer</b>"} 0`, `{device="RTU \"A\""} 2`, `{device="Separator"} 40`, `{device="Spare"} 0`},
		"wellgate_device_errors_by_kind_total":           {`{device="RTU \"A\"",kind="timeout"} 2`, `{device="Separator",kind="crc"} 2`, `{device="Separator",kind="timeout"} 38`},
		"wellgate_device_tags_good":                      {`{device="Flow <b>computer</b>"} 0`, `{device="RTU \"A\""} 1`, `{device="Separator"} 0`, `{device="Spare"} 0`},
		"wellgate_device_response_seconds":               {`{device="RTU \"A\""} 0.012`, `{device="Separator"} 0.04`}, // never answered: absent
		"wellgate_device_last_success_timestamp_seconds": {fmt.Sprintf(`{device="RTU \"A\""} %g`, float64(t0.Unix()-2)), fmt.Sprintf(`{device="Separator"} %g`, float64(t0.Unix()-600))},
		"wellgate_device_response_time_seconds":          {`{device="RTU \"A\""} 3`},
		"wellgate_tags":                                  {`{quality="bad"} 2`, `{quality="good"} 1`, `{quality="stale"} 3`},
		"wellgate_devices":                               {`{state="communicating"} 1`, `{state="connecting"} 1`, `{state="degraded"} 0`, `{state="disabled"} 1`, `{state="down"} 1`},
		"wellgate_upstream_connected":                    {`{} 1`},
		"wellgate_upstream_state":                        {`{state="connecting"} 0`, `{state="disconnected"} 0`, `{state="online"} 1`, `{state="waiting-host"} 0`},
		"wellgate_upstream_connects_total":               {`{} 3`},
		"wellgate_upstream_primary_host_online":          {`{} 1`},
		"wellgate_queue_samples":                         {`{} 12`},
		"wellgate_queue_bytes":                           {`{} 3.145728e+06`},
		"wellgate_queue_oldest_age_seconds":              {`{} 95`},
		"wellgate_queue_dropped_total":                   {`{} 3`},
		"wellgate_queue_dropped_by_reason_total":         {`{reason="age"} 3`},
		"wellgate_sparkplug_messages_total":              {`{session="local",type="DDATA"} 40`, `{session="local",type="NBIRTH"} 1`, `{session="upstream",type="DDATA"} 1200`, `{session="upstream",type="NBIRTH"} 3`},
		"wellgate_broker_clients":                        {`{} 2`},
		"wellgate_healthy":                               {`{} 1`},
		"wellgate_uptime_seconds":                        {`{} 5400`},
	}
	for name, w := range want {
		if got := series(fams[name]); strings.Join(got, "\n") != strings.Join(w, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", name, got, w)
		}
	}
	st := series(fams["wellgate_device_state"])
	if !contains(st, `{device="Flow <b>computer</b>",state="connecting"} 1`) || !contains(st, `{device="Spare",state="disabled"} 1`) ||
		!contains(st, `{device="RTU \"A\"",state="down"} 0`) {
		t.Errorf("device_state = %q", st)
	}
	h := fams["wellgate_device_response_time_seconds"].Metric[0].Histogram
	if h.GetSampleSum() < 7.01 || h.GetSampleSum() > 7.02 || h.Bucket[0].GetCumulativeCount() != 1 ||
		h.Bucket[0].GetUpperBound() != 0.005 || h.Bucket[len(h.Bucket)-2].GetCumulativeCount() != 2 || h.GetSampleCount() != 3 {
		t.Errorf("histogram = %v", h)
	}
	if b := series(fams["wellgate_build_info"]); len(b) != 1 || !strings.Contains(b[0], `version="v1.2.3"`) {
		t.Errorf("build_info = %q", b)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The collector passes client_golang's lint (what `promtool check metrics` checks).
func TestMetricsLint(t *testing.T) {
	for name, snap := range map[string]Snapshot{"site": site(), "empty": {}, "no upstream": {Group: "g", Devices: site().Devices}} {
		s := serveOpts(t, Options{}, fixed(snap))
		problems, err := testutil.CollectAndLint(collector{s: s})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range problems {
			t.Errorf("%s: lint: %s: %s", name, p.Metric, p.Text)
		}
		if err := testutil.CollectAndCompare(collector{s: s}, strings.NewReader("")); err != nil && strings.Contains(err.Error(), "collected before") {
			t.Errorf("%s: duplicate series: %v", name, err)
		}
	}
}

// A device that never answered has no response time nor last success: absent, not 0.
func TestMetricsNeverAnswered(t *testing.T) {
	snap := Snapshot{Devices: []Device{{Name: "new", State: StateConnecting, ResponseTime: 0}}}
	fams := scrape(t, serve(t, fixed(snap)))
	for _, name := range []string{"wellgate_device_response_seconds", "wellgate_device_last_success_timestamp_seconds",
		"wellgate_device_response_time_seconds", "wellgate_queue_oldest_age_seconds", "wellgate_uptime_seconds"} {
		if f := fams[name]; f != nil && len(f.Metric) > 0 {
			t.Errorf("%s present: %q", name, series(f))
		}
	}
	if got := series(fams["wellgate_device_up"]); len(got) != 1 || got[0] != `{device="new"} 0` {
		t.Errorf("device_up = %q", got)
	}
	if v := fams["wellgate_upstream_enabled"].Metric[0].Gauge.GetValue(); v != 0 || math.IsNaN(v) {
		t.Errorf("upstream_enabled = %v", v)
	}
}

// Options.Collectors are served on /metrics with the page's own metrics, and lint clean with
// them; one that clashes with a metric already registered refuses the server.
func TestMetricsCollectors(t *testing.T) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wellgate_publish_latency_seconds",
		Help: "Seconds from a value's poll to its publication.", Buckets: []float64{0.001, 0.01}}, []string{"session"})
	h.WithLabelValues("local").Observe(0.002)
	s := serveOpts(t, Options{Collectors: []prometheus.Collector{h}}, fixed(site()))
	fams := scrape(t, "http://"+s.Addr().String())
	if got := series(fams["wellgate_publish_latency_seconds"]); len(got) != 1 || got[0] != `{session="local"} 1` {
		t.Errorf("wellgate_publish_latency_seconds: %v", got)
	}
	problems, err := testutil.GatherAndLint(s.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "wellgate_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
	if _, err := NewWithOptions(Options{Listen: "127.0.0.1:0", Collectors: []prometheus.Collector{h, h}}, fixed(site()), slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a collector registered twice: no error")
	}
}
