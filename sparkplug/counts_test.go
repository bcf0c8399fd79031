package sparkplug

import (
	"testing"

	"github.com/wellgate/wellgate/drivers"
)

// The session counts what it published, by message type, for the page and /metrics.
func TestMessagesCountedByType(t *testing.T) {
	c := &clock{t: t0}
	s, r := newSession(t, testOptions(c)), &recorder{}
	if err := s.Start(r, 1); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, good("plc1", "Mode", drivers.IntValue(drivers.Int8, -5)))
	if err := s.SetDeviceState("plc1", false); err != nil {
		t.Fatal(err)
	}
	if err := s.Death(); err != nil {
		t.Fatal(err)
	}
	var want = map[string]uint64{}
	for _, m := range r.take() {
		topic, err := ParseTopic(m.topic)
		if err != nil {
			t.Fatal(err)
		}
		want[string(topic.Type)]++
	}
	got := s.Messages()
	if len(got) != len(want) || got["NBIRTH"] != 1 || got["NDEATH"] != 1 || got["DDEATH"] != 1 || got["DDATA"] == 0 {
		t.Fatalf("Messages() = %v, recorder saw %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: counted %d, published %d", k, got[k], v)
		}
	}
}
