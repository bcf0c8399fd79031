package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/wellgate/wellgate/config"
	_ "github.com/wellgate/wellgate/drivers/all"
)

// fleetTOML is a file of devices Modbus TCP devices of tags int16 holding registers each, as
// the fleet load test writes it (issue 14: 200 × 200).
func fleetTOML(devices, tags int) string {
	var b strings.Builder
	b.WriteString("[gateway]\ndata_dir = \"/tmp/wellgate\"\n[sparkplug]\ngroup_id = \"Load\"\nedge_node_id = \"Node\"\n")
	for i := range devices {
		fmt.Fprintf(&b, "[[device]]\nname = \"D%03d\"\ndriver = \"modbus-tcp\"\naddress = \"127.0.0.1:%d\"\npoll_interval = \"1s\"\ntimeout = \"1s\"\n",
			i, 10000+i)
		for j := range tags {
			fmt.Fprintf(&b, "  [[device.tag]]\n  name = \"R%03d\"\n  address = \"%d\"\n  type = \"int16\"\n", j, 40001+j)
		}
	}
	return b.String()
}

// BenchmarkLoad40k loads a 40,000-tag file (200 devices × 200 tags): what start-up allocates
// (B/op, allocs/op), and what the loaded configuration keeps (retained-B/tag: the live heap
// held by the *Config after a collection).
func BenchmarkLoad40k(b *testing.B) {
	file := filepath.Join(b.TempDir(), "wellgate.toml")
	if err := os.WriteFile(file, []byte(fleetTOML(200, 200)), 0o644); err != nil {
		b.Fatal(err)
	}
	var kept *config.Config
	b.ReportAllocs()
	for b.Loop() {
		c, err := config.Load(file)
		if err != nil {
			b.Fatal(err)
		}
		kept = c
	}
	b.StopTimer()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m1)
	runtime.KeepAlive(kept)
	kept = nil
	runtime.GC()
	runtime.ReadMemStats(&m0)
	b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/40000, "retained-B/tag")
}
