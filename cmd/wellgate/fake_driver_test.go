package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/peers"
)

// test-counter is a driver that exists only in this test binary: registering it here, and
// nothing else, is what makes `check` and `run` take it. Each tag counts from the device's
// start by its step, once per poll interval.
func init() {
	config.RegisterDriver(config.DriverSpec{
		Name:      "test-counter",
		NewDevice: func() any { return &counterDevice{} },
		NewTag:    func() any { return &counterTag{Step: 1} },
		Validate: func(devs []*config.Device) config.Errors {
			var errs config.Errors
			for _, d := range devs {
				for i := range d.Tags {
					if s, ok := d.Tags[i].Settings.(*counterTag); ok && s.Step == 0 {
						errs = append(errs, d.TagErrorf(&d.Tags[i], "step", "step must not be 0"))
					}
				}
			}
			return errs
		},
		Build: func(devs []*config.Device, _ *slog.Logger) (config.BuiltDriver, error) {
			return &counter{devs: devs}, nil
		},
	})
}

type counterDevice struct {
	Start int64 `toml:"start"`
}

type counterTag struct {
	Step int64 `toml:"step"` // default 1
}

type counter struct{ devs []*config.Device }

func (c *counter) Devices() []drivers.DeviceInfo {
	var out []drivers.DeviceInfo
	for _, d := range c.devs {
		info := drivers.DeviceInfo{Name: d.Name, Driver: d.Driver}
		for _, t := range d.Tags {
			info.Tags = append(info.Tags, drivers.TagInfo{Name: t.Name, Type: drivers.Int64, Units: t.Units})
		}
		out = append(out, info)
	}
	return out
}

func (c *counter) Run(ctx context.Context, sink drivers.Sink) error {
	tick := time.NewTicker(c.devs[0].PollInterval.D())
	defer tick.Stop()
	for n := int64(1); ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, d := range c.devs {
			var batch []drivers.Sample
			for _, t := range d.Tags {
				v := d.Settings.(*counterDevice).Start + n*t.Settings.(*counterTag).Step
				batch = append(batch, drivers.Sample{Device: d.Name, Tag: t.Name,
					Value: drivers.IntValue(drivers.Int64, v), Quality: drivers.Good, Time: time.Now()})
			}
			sink.Samples(batch)
			if n == 1 {
				sink.DeviceState(d.Name, true, nil)
			}
		}
	}
}

// counterConfig writes a configuration with one test-counter device, with the extra lines
// given, and returns its path.
func counterConfig(t *testing.T, webAddr, brokerAddr, extra string) string {
	t.Helper()
	dir := t.TempDir()
	text := fmt.Sprintf(`[gateway]
data_dir = %q
[sparkplug]
group_id = "Test"
edge_node_id = "Counter"
[broker]
listen = %q
[web]
listen = %q

[[device]]
name = "Counter-1"
driver = "test-counter"
poll_interval = "20ms"
start = 100
[[device.tag]]
name = "Count"
[[device.tag]]
name = "Down"
step = -1
%s`, filepath.Join(dir, "data"), brokerAddr, webAddr, extra)
	path := filepath.Join(dir, "wellgate.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTestDriverCheck(t *testing.T) {
	var out, errb bytes.Buffer
	path := counterConfig(t, "127.0.0.1:0", "127.0.0.1:0", "")
	if code := run([]string{"check", "-config", path}, &out, &errb); code != 0 {
		t.Fatalf("check: exit %d\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "ok (1 devices, 2 tags)") {
		t.Errorf("check output %q", out.String())
	}

	// The driver's own keys are judged by its settings and its Validate, each at its line.
	path = counterConfig(t, "127.0.0.1:0", "127.0.0.1:0", "stepp = 2\n[[device]]\nname = \"Counter-2\"\ndriver = \"test-counter\"\nstart = \"x\"\n[[device.tag]]\nname = \"Zero\"\nstep = 0\n")
	out.Reset()
	errb.Reset()
	if code := run([]string{"check", "-config", path}, &out, &errb); code != 1 {
		t.Fatalf("check: exit %d, want 1\n%s", code, out.String())
	}
	for _, want := range []string{
		path + `:21: device "Counter-1": tag "Down": unknown key "device.tag.stepp"`,
		path + `:25: device "Counter-2": key "device.start" must be an integer, not string "x"`,
		path + `:28: device "Counter-2": tag "Zero": step must not be 0`,
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("missing %q in:\n%s", want, errb.String())
		}
	}
}

// TestTestDriverRun: `run` polls the test driver's device and its samples reach the status
// page, with no edit anywhere but this file.
func TestTestDriverRun(t *testing.T) {
	webAddr := peers.FreePort(t)
	path := counterConfig(t, webAddr, peers.FreePort(t), "")
	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- runContext(ctx, []string{"run", "-config", path}, &logs, &logs) }()

	deadline := time.Now().Add(20 * time.Second)
	for {
		var tags []struct {
			Device  string `json:"device"`
			Tag     string `json:"tag"`
			Quality string `json:"quality"`
			Value   any    `json:"value"`
		}
		resp, err := http.Get("http://" + webAddr + "/api/tags")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&tags)
			resp.Body.Close()
		}
		good := 0
		for _, tg := range tags {
			if v, ok := tg.Value.(float64); ok && tg.Device == "Counter-1" && tg.Quality == "good" &&
				(tg.Tag == "Count" && v > 100 || tg.Tag == "Down" && v < 100) {
				good++
			}
		}
		if good == 2 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the test driver's tags are not good after 20s: %v %+v", err, tags)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run: exit %d\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}
