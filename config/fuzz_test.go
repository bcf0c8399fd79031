package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzLoad feeds arbitrary files to Load: it must return a Config or an error, never panic,
// and every problem must carry the file name.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/config.toml")
	seeds = append(seeds, "../config.example.toml")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		file := filepath.Join(dir, "fuzz.toml")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var c *Config
		var err error
		done := make(chan struct{})
		go func() { c, err = Load(file); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Load did not return within 5s on %q", data)
		}
		if err == nil {
			if c == nil {
				t.Fatal("nil Config without an error")
			}
			return
		}
		es, ok := err.(Errors)
		if !ok || len(es) == 0 {
			t.Fatalf("error %T %v, want non-empty Errors", err, err)
		}
		for _, e := range es {
			if e.File != file {
				t.Fatalf("error without the file name: %v", e)
			}
		}
	})
}
