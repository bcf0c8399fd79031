package gateway

import (
	"encoding/json"
	"log/slog"
	"strings"
	"sync"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/logx"
)

// flatOutput publishes every tag into the embedded broker on a topic of its own
// ([broker.flat] template, "{prefix}/{device}/{tag}") with a small JSON payload, at the QoS and
// retain flag configured for it, so that a local HMI that does not speak Sparkplug subscribes
// to plain topics and, for retained tags, gets every last value at once. A tag is published
// when its value or quality changes (and always after a write); a bad tag publishes its
// quality with its last good value.
type flatOutput struct {
	pub   func(topic string, qos byte, retain bool, payload []byte) error
	log   *slog.Logger
	limit *logx.Limiter

	mu   sync.Mutex
	tags map[string]map[string]*flatTag // device → tag
}

type flatTag struct {
	topic    string
	qos      byte
	retain   bool
	units    string
	last     drivers.Sample
	sent     bool
	lastGood drivers.Sample
	hasGood  bool
}

// flatPayload is what a flat topic carries.
type flatPayload struct {
	Value     any    `json:"value"`               // the value, or the last good one when bad; null when none
	Quality   string `json:"quality"`             // good, bad, stale
	Timestamp int64  `json:"timestamp"`           // source time of the sample, ms since the epoch
	GoodTime  int64  `json:"good_time,omitempty"` // when bad: source time of the value shown
	Units     string `json:"units,omitempty"`
}

func newFlatOutput(cfg *config.Config, devs []drivers.DeviceInfo, pub func(string, byte, bool, []byte) error,
	log *slog.Logger, limit *logx.Limiter) *flatOutput {
	f := cfg.Broker.Flat
	byName := make(map[string]*config.Device, len(cfg.Devices))
	for i := range cfg.Devices {
		byName[cfg.Devices[i].Name] = &cfg.Devices[i]
	}
	o := &flatOutput{pub: pub, log: log, limit: limit, tags: make(map[string]map[string]*flatTag, len(devs))}
	tmpl := splitTopicTemplate(f.Template)
	for _, d := range devs {
		cd := byName[d.Name]
		own := tagOverrides(cd)
		tags := make(map[string]*flatTag, len(d.Tags))
		for _, t := range d.Tags {
			ft := &flatTag{units: t.Units, qos: byte(f.QoS), retain: f.Retain,
				topic: tmpl.expand(f.Prefix, d.Name, t.Name)}
			if cd != nil {
				ft.qos, ft.retain = flatFlags(cd, own[t.Name], ft.qos, ft.retain)
			}
			tags[t.Name] = ft
		}
		o.tags[d.Name] = tags
	}
	return o
}

// topicTemplate is a [broker.flat] template split once at its placeholders: literal parts and
// the placeholders themselves ("{prefix}", "{device}", "{tag}"), in order. A literal part never
// contains a placeholder, so a part equal to one is one. A tag's topic is then one
// concatenation; a strings.Replacer built per tag allocated ~1.7 kB a tag.
type topicTemplate []string

var placeholders = [...]string{"{prefix}", "{device}", "{tag}"}

// splitTopicTemplate splits tmpl as strings.NewReplacer would scan it: left to right, each
// placeholder replaced where it starts, the replacement not scanned again.
func splitTopicTemplate(tmpl string) topicTemplate {
	var parts topicTemplate
	for tmpl != "" {
		at, ph := -1, ""
		for _, p := range placeholders {
			if i := strings.Index(tmpl, p); i >= 0 && (at < 0 || i < at) {
				at, ph = i, p
			}
		}
		if at < 0 {
			return append(parts, tmpl)
		}
		if at > 0 {
			parts = append(parts, tmpl[:at])
		}
		parts = append(parts, ph)
		tmpl = tmpl[at+len(ph):]
	}
	return parts
}

// expand returns the topic of one tag.
func (t topicTemplate) expand(prefix, device, tag string) string {
	var b strings.Builder
	for _, part := range t {
		switch part {
		case placeholders[0]:
			b.WriteString(prefix)
		case placeholders[1]:
			b.WriteString(device)
		case placeholders[2]:
			b.WriteString(tag)
		default:
			b.WriteString(part)
		}
	}
	return b.String()
}

// tagOverrides returns the tags of cd (nil: none) that set flat_qos or flat_retain, by name:
// looked up once per tag, not found by scanning the device's tags for each tag (which at
// 200 × 200 tags was 8 million comparisons). Names are unique within a device (config).
func tagOverrides(cd *config.Device) map[string]*config.Tag {
	if cd == nil {
		return nil
	}
	var own map[string]*config.Tag
	for i := range cd.Tags {
		if t := &cd.Tags[i]; t.FlatQoS != nil || t.FlatRetain != nil {
			if own == nil {
				own = make(map[string]*config.Tag)
			}
			own[t.Name] = t
		}
	}
	return own
}

// flatFlags applies a device's and then its tag's (t, nil when the tag sets neither)
// flat_qos / flat_retain over the defaults, which are [broker.flat]'s.
func flatFlags(cd *config.Device, t *config.Tag, qos byte, retain bool) (byte, bool) {
	if cd.FlatQoS != nil {
		qos = byte(*cd.FlatQoS)
	}
	if cd.FlatRetain != nil {
		retain = *cd.FlatRetain
	}
	if t == nil {
		return qos, retain
	}
	if t.FlatQoS != nil {
		qos = byte(*t.FlatQoS)
	}
	if t.FlatRetain != nil {
		retain = *t.FlatRetain
	}
	return qos, retain
}

func (o *flatOutput) Samples(batch []drivers.Sample) { o.publish(batch, false) }
func (o *flatOutput) Written(batch []drivers.Sample) { o.publish(batch, true) }

// DeviceState needs nothing of its own: a driver reports a device's tags bad when it goes down.
func (o *flatOutput) DeviceState(string, bool, error) {}

func (o *flatOutput) publish(batch []drivers.Sample, always bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range batch {
		ft := o.tags[s.Device][s.Tag]
		if ft == nil {
			continue // node metrics and unknown tags have no flat topic
		}
		if !always && ft.sent && ft.last.Quality == s.Quality && ft.last.Value.Equal(s.Value) {
			continue
		}
		ft.last, ft.sent = s, true
		if s.Quality == drivers.Good && !s.Value.IsNull() {
			ft.lastGood, ft.hasGood = s, true
		}
		if err := o.pub(ft.topic, ft.qos, ft.retain, ft.payload()); err != nil {
			o.limit.Log(o.log, slog.LevelWarn, "flat publish", "flat topic not published",
				"topic", logx.Value(ft.topic), "err", logx.Err(err))
		}
	}
}

func (ft *flatTag) payload() []byte {
	p := flatPayload{Quality: ft.last.Quality.String(), Timestamp: ft.last.Time.UnixMilli(), Units: ft.units}
	switch {
	case !ft.last.Value.IsNull():
		p.Value = jsonValue(ft.last.Value)
	case ft.hasGood:
		p.Value, p.GoodTime = jsonValue(ft.lastGood.Value), ft.lastGood.Time.UnixMilli()
	}
	b, err := json.Marshal(p)
	if err != nil { // only a value JSON cannot hold, which jsonValue already turned into text
		b = []byte(`{"value":null,"quality":"bad"}`)
	}
	return b
}
