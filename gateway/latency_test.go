package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wellgate/wellgate/internal/peers"
)

// A value polled from a real Modbus device and published in live DATA on the embedded broker
// is counted in wellgate_publish_latency_seconds{session="local"} on the page's /metrics.
func TestPublishLatencyMetric(t *testing.T) {
	p := &plc{}
	plcAddr := freeAddr(t)
	peers.ServePLC(t, plcAddr, p)
	src := fmt.Sprintf(`
[gateway]
data_dir = %q
[sparkplug]
group_id = "Latency"
edge_node_id = "Node"
[broker]
listen = "127.0.0.1:0"
[web]
listen = "127.0.0.1:0"
[[device]]
name = "Live"
driver = "modbus-tcp"
address = %q
poll_interval = "50ms"
timeout = "300ms"
  [[device.tag]]
  name = "Level"
  address = "40001"
  type = "uint16"
`, t.TempDir(), plcAddr)
	r := startGatewayN(t, writeTOML(t, t.TempDir(), src))
	t.Cleanup(r.stop)
	metrics := func() string {
		resp, err := http.Get("http://" + r.WebAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	count := func(body string) float64 {
		for line := range strings.Lines(body) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), `wellgate_publish_latency_seconds_count{session="local"} `); ok {
				n, _ := strconv.ParseFloat(v, 64)
				return n
			}
		}
		return 0
	}
	var body string
	for deadline, v := time.Now().Add(10*time.Second), uint16(1); ; v++ {
		p.Set(func(p *plc) { p.Holding[0] = v }) // a new value each time: report by exception publishes it
		if body = metrics(); count(body) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no wellgate_publish_latency_seconds_count{session=\"local\"} > 0 on /metrics within 10s:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(body, "# HELP wellgate_publish_latency_seconds ") ||
		!strings.Contains(body, `wellgate_publish_latency_seconds_bucket{session="local",le="0.005"}`) {
		t.Errorf("/metrics: the histogram's help or buckets are missing")
	}
}
