package gateway

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/drivers"
)

// TestFlatFlagsPrecedence: a tag's own flat_qos / flat_retain win over its device's, which win
// over [broker.flat]'s; each key on its own, so that a tag setting only one keeps the other
// from its device (or from [broker.flat]).
func TestFlatFlagsPrecedence(t *testing.T) {
	i := func(v int) *int { return &v }
	b := func(v bool) *bool { return &v }
	cfg := &config.Config{Broker: config.Broker{Flat: config.Flat{Enabled: true, Prefix: "p",
		Template: "{prefix}/{device}/{tag}", QoS: 0, Retain: false}}}
	cfg.Devices = []config.Device{
		{Name: "Dev", FlatQoS: i(1), FlatRetain: b(true), Tags: []config.Tag{
			{Name: "Own", FlatQoS: i(2), FlatRetain: b(false)},
			{Name: "QoSOnly", FlatQoS: i(0)},
			{Name: "RetainOnly", FlatRetain: b(false)},
		}},
		{Name: "Plain", Tags: []config.Tag{{Name: "Own", FlatQoS: i(2)}}},
	}
	devs := []drivers.DeviceInfo{
		{Name: "Dev", Tags: []drivers.TagInfo{{Name: "Own"}, {Name: "QoSOnly"}, {Name: "RetainOnly"}, {Name: "Inherits"}}},
		{Name: "Plain", Tags: []drivers.TagInfo{{Name: "Own"}, {Name: "Defaults"}}},
		{Name: "NotInConfig", Tags: []drivers.TagInfo{{Name: "Defaults"}}},
	}
	o := newFlatOutput(cfg, devs, nil, nil, nil)
	for _, c := range []struct {
		dev, tag string
		qos      byte
		retain   bool
	}{
		{"Dev", "Own", 2, false},        // the tag's own keys
		{"Dev", "QoSOnly", 0, true},     // its own QoS, its device's retain
		{"Dev", "RetainOnly", 1, false}, // its device's QoS, its own retain
		{"Dev", "Inherits", 1, true},    // its device's keys
		{"Plain", "Own", 2, false},      // its own QoS, [broker.flat]'s retain
		{"Plain", "Defaults", 0, false}, // [broker.flat]'s
		{"NotInConfig", "Defaults", 0, false},
	} {
		ft := o.tags[c.dev][c.tag]
		if ft == nil {
			t.Errorf("%s/%s: no flat tag", c.dev, c.tag)
			continue
		}
		if ft.qos != c.qos || ft.retain != c.retain || ft.topic != "p/"+c.dev+"/"+c.tag {
			t.Errorf("%s/%s: topic %q qos %d retain %v, want p/%s/%s qos %d retain %v",
				c.dev, c.tag, ft.topic, ft.qos, ft.retain, c.dev, c.tag, c.qos, c.retain)
		}
	}
}

// BenchmarkNewFlatOutput builds the flat output of 200 devices × 200 tags that all set
// flat_qos: linear in the tags (it was quadratic, each tag scanning its device's tags).
func BenchmarkNewFlatOutput(b *testing.B) {
	qos := 1
	cfg := &config.Config{Broker: config.Broker{Flat: config.Flat{Enabled: true, Prefix: "p", Template: "{prefix}/{device}/{tag}"}}}
	devs := make([]drivers.DeviceInfo, 200)
	cfg.Devices = make([]config.Device, len(devs))
	for i := range devs {
		name := fmt.Sprintf("D%03d", i)
		devs[i] = drivers.DeviceInfo{Name: name, Tags: make([]drivers.TagInfo, 200)}
		cfg.Devices[i] = config.Device{Name: name, Tags: make([]config.Tag, 200)}
		for j := range devs[i].Tags {
			devs[i].Tags[j].Name = fmt.Sprintf("R%03d", j)
			cfg.Devices[i].Tags[j] = config.Tag{Name: devs[i].Tags[j].Name, FlatQoS: &qos}
		}
	}
	for b.Loop() {
		newFlatOutput(cfg, devs, nil, nil, nil)
	}
}

// TestTopicTemplate: a split template gives the topic strings.Replacer gives, placeholders in
// any order, repeated, adjacent or inside names included.
func TestTopicTemplate(t *testing.T) {
	names := []string{"", "p", "{tag}", "{device}x", "{pre", "fix}"}
	for _, tmpl := range []string{
		"{prefix}/{device}/{tag}", "{tag}", "x/{tag}/{tag}", "{device}{tag}{prefix}", "{{tag}}",
		"{prefix", "{pre{prefix}fix}/{tag}", "a/b/{tag}/c", "", "{devic{tag}",
	} {
		for _, prefix := range names {
			for _, dev := range names {
				for _, tag := range names {
					want := strings.NewReplacer("{prefix}", prefix, "{device}", dev, "{tag}", tag).Replace(tmpl)
					if got := splitTopicTemplate(tmpl).expand(prefix, dev, tag); got != want {
						t.Errorf("template %q (%q, %q, %q): %q, want %q", tmpl, prefix, dev, tag, got, want)
					}
				}
			}
		}
	}
}
