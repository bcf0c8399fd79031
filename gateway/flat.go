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
	for _, d := range devs {
		cd := byName[d.Name]
		tags := make(map[string]*flatTag, len(d.Tags))
		for _, t := range d.Tags {
			ft := &flatTag{units: t.Units, qos: byte(f.QoS), retain: f.Retain,
				topic: strings.NewReplacer("{prefix}", f.Prefix, "{device}", d.Name, "{tag}", t.Name).Replace(f.Template)}
			if cd != nil {
				ft.qos, ft.retain = flatFlags(cd, t.Name, ft.qos, ft.retain)
			}
			tags[t.Name] = ft
		}
		o.tags[d.Name] = tags
	}
	return o
}

// flatFlags applies a device's and then a tag's flat_qos / flat_retain over the defaults.
func flatFlags(cd *config.Device, tag string, qos byte, retain bool) (byte, bool) {
	if cd.FlatQoS != nil {
		qos = byte(*cd.FlatQoS)
	}
	if cd.FlatRetain != nil {
		retain = *cd.FlatRetain
	}
	for _, t := range cd.Tags {
		if t.Name != tag {
			continue
		}
		if t.FlatQoS != nil {
			qos = byte(*t.FlatQoS)
		}
		if t.FlatRetain != nil {
			retain = *t.FlatRetain
		}
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
