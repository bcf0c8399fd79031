package broker

import "testing"

func TestCovers(t *testing.T) {
	for _, c := range []struct {
		r, f string
		want bool
	}{
		{"spBv1.0/#", "spBv1.0/G/NDATA/E", true},
		{"spBv1.0/#", "spBv1.0", true}, // # matches the parent level too
		{"spBv1.0/#", "spBv1.0/+/DCMD/#", true},
		{"spBv1.0/#", "#", false},
		{"spBv1.0/+/DCMD/#", "spBv1.0/G/DCMD/E/pump", true},
		{"spBv1.0/+/DCMD/#", "spBv1.0/G/NCMD/E", false},
		{"spBv1.0/+/DCMD/#", "spBv1.0/+/DCMD/#", true},
		{"spBv1.0/G/DCMD/#", "spBv1.0/+/DCMD/#", false}, // + reaches other groups
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a/+/c", true},
		{"a/+/c", "a/#", false},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"#", "anything/at/all", true},
		{"#", "$SYS/broker/uptime", false}, // [MQTT-4.7.2-1]
		{"+/broker/uptime", "$SYS/broker/uptime", false},
		{"$SYS/#", "$SYS/broker/uptime", true},
		{"wellsite/#", "wellsite/well1/level", true},
	} {
		if got := covers(c.r, c.f); got != c.want {
			t.Errorf("covers(%q, %q) = %v, want %v", c.r, c.f, got, c.want)
		}
	}
}

func TestFiltersOverlap(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"+/#", "spBv1.0/+/NCMD/#", true},
		{"#", "spBv1.0/+/DCMD/#", true},
		{"spBv1.0/STATE/+", "spBv1.0/+/DCMD/#", true}, // spBv1.0/STATE/DCMD matches both
		{"spBv1.0/STATE/+", "spBv1.0/+/DCMD/+", false},
		{"spBv1.0/G/+/E", "spBv1.0/+/NCMD/#", true},
		{"wellsite/#", "spBv1.0/+/DCMD/#", false},
		{"a/b", "a/b/#", true},
		{"a/b/c", "a/b", false},
		{"$SYS/#", "+/#", false},
	} {
		if got := FiltersOverlap(c.a, c.b); got != c.want {
			t.Errorf("FiltersOverlap(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := FiltersOverlap(c.b, c.a); got != c.want {
			t.Errorf("FiltersOverlap(%q, %q) = %v, want %v", c.b, c.a, got, c.want)
		}
	}
}

func TestValidFilter(t *testing.T) {
	for f, want := range map[string]bool{"a/b": true, "a/+/c": true, "#": true, "a/#": true, "+": true,
		"": false, "a/#/b": false, "a#": false, "a/b+": false, "a\x00b": false} {
		if got := ValidFilter(f); got != want {
			t.Errorf("ValidFilter(%q) = %v, want %v", f, got, want)
		}
	}
}

func TestEdgeNodeKind(t *testing.T) {
	e := EdgeNode{Group: "Wells", Node: "gw1"}
	for topic, want := range map[string]topicKind{
		"spBv1.0/Wells/NBIRTH/gw1":       topicOwn,
		"spBv1.0/Wells/NDATA/gw1":        topicOwn,
		"spBv1.0/Wells/NDEATH/gw1":       topicOwn,
		"spBv1.0/Wells/DBIRTH/gw1/pump":  topicOwn,
		"spBv1.0/Wells/DDATA/gw1/pump":   topicOwn,
		"spBv1.0/Wells/DDEATH/gw1/pump":  topicOwn,
		"spBv1.0/Wells/NCMD/gw1":         topicCommand,
		"spBv1.0/Wells/DCMD/gw1/pump":    topicCommand,
		"spBv1.0/Wells/DCMD/gw1":         topicOwn, // not a valid command: nobody but us
		"spBv1.0/Wells/NDATA/gw2":        topicOther,
		"spBv1.0/Other/NDATA/gw1":        topicOther,
		"spBv1.0/STATE/ignition":         topicOther,
		"wellsite/gw1/pump/level":        topicOther,
		"spBv1.0/Wells/NBIRTH/gw1/extra": topicOwn,
	} {
		if got := e.kind(topic); got != want {
			t.Errorf("kind(%q) = %v, want %v", topic, got, want)
		}
	}
	if (EdgeNode{}).kind("spBv1.0/Wells/NBIRTH/gw1") != topicOther {
		t.Error("an unset edge node protects a namespace")
	}
}

// A forward rule's filter can be checked against the gateway's Sparkplug namespace.
func TestFiltersOverlapSparkplug(t *testing.T) {
	for f, want := range map[string]bool{"+/#": true, "#": true, "spBv1.0/#": true, "+/+/NDATA/+": true,
		"wellsite/#": false, "$SYS/#": false, "spBv1.0": true, "plant/spBv1.0/#": false} {
		if got := FiltersOverlap(f, "spBv1.0/#"); got != want {
			t.Errorf("FiltersOverlap(%q, spBv1.0/#) = %v, want %v", f, got, want)
		}
	}
}
