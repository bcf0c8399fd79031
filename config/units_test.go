package config

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"500ms": 500 * time.Millisecond, "1m30s": 90 * time.Second, "0s": 0, "720h": 720 * time.Hour} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err != nil || d.D() != want {
			t.Errorf("%q: got %v, %v; want %v", in, d, err, want)
		}
		if text, _ := d.MarshalText(); string(text) != want.String() {
			t.Errorf("%q: MarshalText = %q", in, text)
		}
	}
	for _, in := range []string{"", "5", "-1s", "1d", "1 s"} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestSize(t *testing.T) {
	good := map[any]Size{
		int64(0): 0, int64(1024): 1024, "1024": 1024, "64KiB": 64 << 10, "512MiB": 512 << 20,
		"1GiB": 1 << 30, "100MB": 100e6, "2 gb": 2e9, "1TiB": 1 << 40, "7B": 7,
	}
	for in, want := range good {
		var s Size
		if err := s.UnmarshalTOML(in); err != nil || s != want {
			t.Errorf("%v: got %v, %v; want %v", in, s, err, want)
		}
	}
	for _, in := range []any{int64(-1), "-1", "", "MiB", "1.5GiB", "1 gigabyte", "99999999999TiB", true, 1.5} {
		var s Size
		if err := s.UnmarshalTOML(in); err == nil {
			t.Errorf("%v: no error (%d)", in, s)
		}
	}
	for s, want := range map[Size]string{0: "0B", 1 << 30: "1GiB", 1536: "3KiB" /* 1.5KiB is not whole */, 100: "100B"} {
		if s == 1536 {
			want = "1536B"
		}
		if got := s.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(s), got, want)
		}
	}
}
