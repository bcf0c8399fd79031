package config

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// fakeDevice and fakeTag are the settings of the test drivers "fake" and "other".
type fakeDevice struct {
	Host string `toml:"host"`
	Port int    `toml:"port"` // default 7
	Mode string `toml:"mode"`
}

type fakeTag struct {
	Register int     `toml:"register"`
	Gain     float64 `toml:"gain"` // default 1
}

type otherDevice struct {
	Speed int `toml:"speed"`
}

type fakeDriver struct{ devs []*Device }

func (f *fakeDriver) Run(ctx context.Context, _ drivers.Sink) error { <-ctx.Done(); return nil }
func (f *fakeDriver) Devices() []drivers.DeviceInfo                 { return nil }

// testRegistry registers "fake" (whose Validate refuses mode "bad" and records what it was
// given in *seen) and "other".
func testRegistry(t *testing.T, seen *[]*Device) *registry {
	t.Helper()
	reg := &registry{}
	for _, spec := range []DriverSpec{{
		Name:      "fake",
		NewDevice: func() any { return &fakeDevice{Port: 7} },
		NewTag:    func() any { return &fakeTag{Gain: 1} },
		Validate: func(devs []*Device) Errors {
			*seen = devs
			var errs Errors
			for _, d := range devs {
				if s, ok := d.Settings.(*fakeDevice); ok && s.Mode == "bad" {
					errs = append(errs, d.Errorf("mode", "mode %q is bad", s.Mode))
				}
				for i := range d.Tags {
					if s, ok := d.Tags[i].Settings.(*fakeTag); ok && s.Register < 0 {
						errs = append(errs, d.TagErrorf(&d.Tags[i], "register", "register %d is negative", s.Register))
					}
				}
			}
			return errs
		},
		Build: func(devs []*Device, _ *slog.Logger) (BuiltDriver, error) { return &fakeDriver{devs}, nil },
	}, {
		Name:      "other",
		NewDevice: func() any { return &otherDevice{} },
		NewTag:    func() any { return &struct{}{} },
		Build:     func([]*Device, *slog.Logger) (BuiltDriver, error) { return &fakeDriver{}, nil },
	}} {
		if err := reg.add(spec); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

func TestDriverSettingsDecoded(t *testing.T) {
	var seen []*Device
	c, err := parseWith(testRegistry(t, &seen), "w.toml", minimal+`
[[device]]
name = "D"
driver = "fake"
host = "h"
[[device.tag]]
name = "T"
register = 5
[[device]]
name = "E"
driver = "fake"
disabled = true
port = 9
tag = [{ name = "U", gain = 2.5 }]
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{&fakeDevice{Host: "h", Port: 7}, &fakeDevice{Port: 9}}
	wantTags := []any{&fakeTag{Register: 5, Gain: 1}, &fakeTag{Gain: 2.5}}
	for i, d := range c.Devices {
		if !reflect.DeepEqual(d.Settings, want[i]) || !reflect.DeepEqual(d.Tags[0].Settings, wantTags[i]) {
			t.Errorf("device %s: settings %+v, tag settings %+v", d.Name, d.Settings, d.Tags[0].Settings)
		}
		if d.PollInterval.D() != time.Second || d.Timeout.D() != time.Second {
			t.Errorf("device %s: common defaults lost: %+v", d.Name, d)
		}
	}
	if len(seen) != 2 {
		t.Errorf("Validate saw %d devices, want both (disabled ones too)", len(seen))
	}
	if got := c.Enabled("fake"); len(got) != 1 || got[0].Name != "D" {
		t.Errorf("Enabled = %v", got)
	}
	if c.Devices[0].Line != 6 || c.Devices[0].Tags[0].Line != 10 || c.Devices[1].Tags[0].Line != 18 {
		t.Errorf("lines: device %d, tags %d %d", c.Devices[0].Line, c.Devices[0].Tags[0].Line, c.Devices[1].Tags[0].Line)
	}
}

// TestDriverKeys: the driver's own decoder judges its keys, each problem at its line, and a
// table with a problem reaches Validate without settings, while the others are still judged.
func TestDriverKeys(t *testing.T) {
	var seen []*Device
	_, err := parseWith(testRegistry(t, &seen), "w.toml", minimal+`
[[device]]
name = "D"
driver = "fake"
speed = 9600
hots = "h"
[[device.tag]]
name = "T"
register = "five"
[[device.tag]]
name = "U"
register = -1
[[device]]
name = "E"
driver = "fake"
port = "x"
mode = "bad"
[[device]]
name = "F"
driver = "fake"
mode = "bad"
`)
	want := []string{
		`w.toml:9: device "D": key "speed" does not apply to driver fake`,
		`w.toml:10: device "D": unknown key "device.hots"`,
		`w.toml:13: device "D": tag "T": key "device.tag.register" must be an integer, not string "five"`,
		`w.toml:16: device "D": tag "U": register -1 is negative`,
		`w.toml:20: device "E": key "device.port" must be an integer, not string "x"`,
		`w.toml:25: device "F": mode "bad" is bad`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("got:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	if len(seen) != 3 || seen[0].Settings != nil || seen[1].Settings != nil || seen[2].Settings == nil ||
		seen[0].Tags[0].Settings != nil || seen[0].Tags[1].Settings == nil {
		t.Errorf("Validate got settings for a table with a problem, or none for a good one")
	}
}

func TestDriverMissingOrUnknown(t *testing.T) {
	_, err := parseWith(&registry{}, "w.toml", minimal+"[[device]]\nname = \"D\"\nfoo = 1\n")
	if err == nil || err.Error() != `w.toml:5: device "D": driver is required: no driver is registered` {
		t.Errorf("no drivers: %v", err)
	}
	var seen []*Device
	_, err = parseWith(testRegistry(t, &seen), "w.toml", minimal+"[[device]]\nname = \"D\"\ndriver = \"opcua\"\nendpoint = \"x\"\n")
	if err == nil || err.Error() != `w.toml:7: device "D": unknown driver "opcua": want fake or other` {
		t.Errorf("unknown driver: %v", err)
	}
}

func TestRegisterDriverRefuses(t *testing.T) {
	ok := DriverSpec{Name: "x", NewDevice: func() any { return &otherDevice{} }, NewTag: func() any { return &fakeTag{} },
		Build: func([]*Device, *slog.Logger) (BuiltDriver, error) { return &fakeDriver{}, nil }}
	tests := map[string]func(*DriverSpec){
		"no name":         func(s *DriverSpec) { s.Name = "" },
		"no build":        func(s *DriverSpec) { s.Build = nil },
		"no tag settings": func(s *DriverSpec) { s.NewTag = nil },
		"not a pointer":   func(s *DriverSpec) { s.NewDevice = func() any { return otherDevice{} } },
		"a common key": func(s *DriverSpec) {
			s.NewTag = func() any {
				return &struct {
					Units string `toml:"units"`
				}{}
			}
		},
		"registered twice": func(*DriverSpec) {},
	}
	for name, change := range tests {
		reg := &registry{}
		if name == "registered twice" {
			_ = reg.add(ok)
		}
		spec := ok
		change(&spec)
		if err := reg.add(spec); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
