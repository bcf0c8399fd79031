package drivers

import (
	"testing"
	"time"
)

func TestScheduleNext(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("15:04:05.000", s)
		if err != nil {
			t.Fatal(err)
		}
		return time.Date(2026, 12, 2, v.Hour(), v.Minute(), v.Second(), v.Nanosecond(), time.UTC)
	}
	cases := []struct {
		name      string
		s         Schedule
		prev, now string
		interval  time.Duration
		want      string
		overran   bool
	}{
		{"first poll at start, then the next whole second", OnClock, "10:00:00.370", "10:00:00.390", time.Second, "10:00:01.000", false},
		{"on the grid", OnClock, "10:00:01.000", "10:00:01.020", time.Second, "10:00:02.000", false},
		{"a poll that ends on the next start polls at once", OnClock, "10:00:01.000", "10:00:02.000", time.Second, "10:00:02.000", false},
		{"overrun skips to the next start, no catch-up", OnClock, "10:00:01.000", "10:00:03.500", time.Second, "10:00:04.000", true},
		{"1m aligns to whole minutes", OnClock, "10:03:17.250", "10:03:17.300", time.Minute, "10:04:00.000", false},
		{"100ms", OnClock, "10:00:00.137", "10:00:00.140", 100 * time.Millisecond, "10:00:00.200", false},
		{"a poll that took no time does not repeat its start", OnClock, "10:00:02.000", "10:00:02.000", time.Second, "10:00:03.000", false},
		{"the wall clock slewed back a little", OnClock, "10:00:02.000", "10:00:01.999", time.Second, "10:00:03.000", false},
		{"the wall clock was set back an hour", OnClock, "11:00:02.000", "10:00:02.400", time.Second, "10:00:03.000", false},
		{"scan rate: a new interval from now", OnClock, "10:00:05.432", "10:00:05.432", 250 * time.Millisecond, "10:00:05.500", false},
		{"start keeps the phase of the first poll", FromStart, "10:00:00.370", "10:00:00.390", time.Second, "10:00:01.370", false},
		{"start skips overrun starts", FromStart, "10:00:00.370", "10:00:02.500", time.Second, "10:00:03.370", true},
		{"start: a poll that ends on the next start polls at once", FromStart, "10:00:00.370", "10:00:01.370", time.Second, "10:00:01.370", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, overran := c.s.Next(at(c.prev), c.interval, at(c.now))
			if !got.Equal(at(c.want)) || overran != c.overran {
				t.Errorf("Next(%s, %v, %s) = %s, %v; want %s, %v", c.prev, c.interval, c.now,
					got.UTC().Format("15:04:05.000"), overran, c.want, c.overran)
			}
		})
	}
}

// An interval that does not divide a day counts its multiples from the Unix epoch.
func TestScheduleNextFromEpoch(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	next, _ := OnClock.Next(now, 7*time.Second, now)
	if next.UnixNano()%int64(7*time.Second) != 0 || next.Sub(now) <= 0 || next.Sub(now) > 7*time.Second {
		t.Fatalf("next %v is not the first multiple of 7s since the epoch after %v", next, now)
	}
}

func TestParseSchedule(t *testing.T) {
	for in, want := range map[string]Schedule{"": OnClock, "clock": OnClock, "start": FromStart} {
		if got, err := ParseSchedule(in); err != nil || got != want {
			t.Errorf("ParseSchedule(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseSchedule("Clock"); err == nil {
		t.Error("ParseSchedule(\"Clock\") accepted")
	}
}
