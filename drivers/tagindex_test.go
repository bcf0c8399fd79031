package drivers

import "testing"

func TestTagIndex(t *testing.T) {
	tags := []TagInfo{{Name: "b"}, {Name: "a/x"}, {Name: "c"}, {Name: "a"}, {Name: "b"}}
	x := NewTagIndex(tags)
	for name, want := range map[string]int{"a": 3, "a/x": 1, "c": 2, "b": 4, "": -1, "d": -1, "a/": -1} {
		if got := x.Find(tags, name); got != want {
			t.Errorf("Find(%q) = %d, want %d", name, got, want)
		}
	}
	if got := NewTagIndex(nil).Find(nil, "a"); got != -1 {
		t.Errorf("Find in no tags = %d, want -1", got)
	}
}
