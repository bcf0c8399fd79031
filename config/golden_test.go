package config_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wellgate/wellgate/config"
	_ "github.com/wellgate/wellgate/drivers/all"
)

var update = flag.Bool("update", false, "rewrite testdata/*/want.txt from what Load returns")

// TestGolden loads testdata/<case>/config.toml with Load, with the real drivers registered,
// and compares the error text with testdata/<case>/want.txt. The file name in messages is
// written as "config.toml" (the "testdata/<case>/" prefix is removed). An empty want.txt means
// the file must load.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/config.toml")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, file := range dirs {
		dir := filepath.Dir(file)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			got := ""
			if _, err := config.Load(file); err != nil {
				var es config.Errors
				if !errors.As(err, &es) {
					t.Fatalf("Load returned %T, want Errors: %v", err, err)
				}
				got = strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "") + "\n"
			}
			wantFile := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("Load(%s) errors:\n%s\nwant:\n%s", file, got, want)
			}
		})
	}
}

func TestLoadExample(t *testing.T) {
	c, err := config.Load("../config.example.toml")
	if err != nil {
		t.Fatalf("config.example.toml: %v", err)
	}
	if len(c.Devices) != 2 || c.Upstream.Enabled() {
		t.Errorf("example: %d devices, upstream enabled %v; want 2 devices and no upstream", len(c.Devices), c.Upstream.Enabled())
	}
	for _, d := range c.Devices {
		if len(d.Tags) == 0 || d.Line == 0 {
			t.Errorf("example device %q: %d tags, line %d", d.Name, len(d.Tags), d.Line)
		}
	}
}
