package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*/want.txt from what Load returns")

// TestGolden loads testdata/<case>/config.toml with Load and compares the error text with
// testdata/<case>/want.txt. The file name in messages is written as "config.toml" (the
// "testdata/<case>/" prefix is removed). An empty want.txt means the file must load.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/config.toml")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, file := range dirs {
		dir := filepath.Dir(file)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			got := ""
			if _, err := Load(file); err != nil {
				var es Errors
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
