package drivers

import (
	"errors"
	"testing"
	"time"
)

func TestCounters(t *testing.T) {
	var c Counters
	at := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	c.Answered(12 * time.Millisecond)
	c.Failed("timeout", errors.New("no answer"), at)
	c.Good(at.Add(time.Second))
	c.SetUp(true)
	if n := c.Count("late_reply"); n != 1 {
		t.Fatalf("Count = %d, want 1", n)
	}
	s := c.Status("Well 1")
	if s.Device != "Well 1" || !s.Up || s.Requests != 2 || s.Errors != 1 || s.ResponseTime != 12*time.Millisecond ||
		s.LastError != "no answer" || !s.LastErrorAt.Equal(at) || !s.LastGood.Equal(at.Add(time.Second)) ||
		s.ErrorsByKind["timeout"] != 1 || s.ErrorsByKind["late_reply"] != 1 {
		t.Fatalf("Status = %+v", s)
	}
	s.ErrorsByKind["timeout"] = 99 // the copy is the caller's
	if c.Status("x").ErrorsByKind["timeout"] != 1 {
		t.Fatal("Status shares its map with the counters")
	}
}
