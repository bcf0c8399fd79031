package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// UnmarshalText parses a duration such as "500ms" or "1m30s". Negative durations are refused.
func (d *Duration) UnmarshalText(text []byte) error {
	s := string(text)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (want a number with a unit, such as \"500ms\", \"30s\", \"1m30s\", \"720h\")", s)
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration in the form UnmarshalText reads.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String returns the duration as time.Duration formats it ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// sizeUnits maps a unit suffix (lower case) to its multiplier.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// UnmarshalTOML accepts an integer number of bytes or a string such as "1024", "64KiB",
// "512MiB", "1GiB" or "100MB" (KB, MB, GB, TB are powers of 1000; KiB, MiB, GiB, TiB of 1024).
func (s *Size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("negative size %d", v)
		}
		*s = Size(v)
		return nil
	case string:
		n, err := parseSize(v)
		if err != nil {
			return err
		}
		*s = n
		return nil
	}
	return errors.New("a size must be an integer number of bytes or a string such as \"512MiB\"")
}

func parseSize(text string) (Size, error) {
	t := strings.TrimSpace(text)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if i == 0 || !ok {
		return 0, fmt.Errorf("invalid size %q (want whole bytes, or a whole number with a unit: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", text)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", text)
	}
	return Size(n * mult), nil
}

// String formats the size with the largest binary unit that divides it exactly ("1GiB").
func (s Size) String() string {
	units := []string{"TiB", "GiB", "MiB", "KiB"}
	for i, u := range units {
		m := int64(1) << (10 * (len(units) - i))
		if s != 0 && int64(s)%m == 0 {
			return strconv.FormatInt(int64(s)/m, 10) + u
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}
