package config

import (
	"strings"
	"testing"
)

func TestKeyLines(t *testing.T) {
	src := strings.Join([]string{
		`# comment [not = a header]`,           // 1
		`top = "a # not a comment"  # comment`, // 2
		`[gateway]`,                            // 3
		`  data_dir = '/x'`,                    // 4
		`multi = """`,                          // 5
		`fake = 1`,                             // 6
		`\"""`,                                 // 7
		`ends = 1 """`,                         // 8
		`[[device]] # first`,                   // 9
		`name = "a"`,                           // 10
		`arr = [`,                              // 11
		`  "x", # fake = 2`,                    // 12
		`  [1, 2],`,                            // 13
		`]`,                                    // 14
		`[[device.tag]]`,                       // 15
		`"quoted.key" = 1`,                     // 16
		`[[device]]`,                           // 17
		`inline = { a = 1, b = [2] }`,          // 18
		`dotted . key = 'it''s'`,               // 19
		`[[ device . tag ]]`,                   // 20
		`lit = '''`,                            // 21
		`x = 1'''''`,                           // 22
		`after = 1`,                            // 23
		`[[device.tag]]`,                       // 24
		`[upstream.tls]`,                       // 25
		`ca_file = "c"`,                        // 26
	}, "\n")
	lines := keyLines(src)
	tests := []struct {
		path path
		want int
	}{
		{path{"top"}, 2},
		{path{"gateway"}, 3},
		{path{"gateway", "data_dir"}, 4},
		{path{"gateway", "multi"}, 5},
		{path{"gateway", "fake"}, 3}, // inside a string: not a key, so the table's line
		{path{"device"}, 9},          // an array of tables is where its first element starts
		{path{"device", "[0]"}, 9},
		{path{"device", "[0]", "name"}, 10},
		{path{"device", "[0]", "arr"}, 11},
		{path{"device", "[0]", "fake"}, 9},
		{path{"device", "[0]", "tag"}, 15},
		{path{"device", "[0]", "tag", "[0]"}, 15},
		{path{"device", "[0]", "tag", "[0]", "quoted.key"}, 16},
		{path{"device", "[1]"}, 17},
		{path{"device", "[1]", "inline"}, 18},
		{path{"device", "[1]", "inline", "a"}, 18},
		{path{"device", "[1]", "dotted", "key"}, 19},
		{path{"device", "[1]", "tag", "[0]"}, 20},
		{path{"device", "[1]", "tag", "[0]", "lit"}, 21},
		{path{"device", "[1]", "tag", "[0]", "after"}, 23},
		{path{"device", "[1]", "tag", "[1]"}, 24},
		{path{"upstream", "tls"}, 25},
		{path{"upstream", "tls", "ca_file"}, 26},
		{path{"nothing"}, 0},
	}
	for _, tt := range tests {
		if got := lines.line(tt.path); got != tt.want {
			t.Errorf("line(%q) = %d, want %d", tt.path, got, tt.want)
		}
	}
}

func TestKeyLinesCRLF(t *testing.T) {
	lines := keyLines("[[device]]\r\nname = \"a\"\r\n\r\n[[device.tag]]\r\naddress = 'x'\r\n")
	for _, tt := range []struct {
		p    path
		want int
	}{
		{path{"device", "[0]", "name"}, 2},
		{path{"device", "[0]", "tag", "[0]"}, 4},
		{path{"device", "[0]", "tag", "[0]", "address"}, 5},
	} {
		if got := lines.line(tt.p); got != tt.want {
			t.Errorf("line(%q) = %d, want %d", tt.p, got, tt.want)
		}
	}
}
