package modbus

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/drivers"
)

var update = flag.Bool("update", false, "rewrite golden files")

// feasible reports whether one read may serve every tag of block under rules: the span fits
// the limit, no hole between covered registers exceeds the gap, and every cut inside the span
// lies strictly inside one of the block's tags. It is the planner's rule, stated on sets.
func feasible(block []*tag, rules planRules) bool {
	lo, hi := int(block[0].start), block[0].end()
	for _, t := range block {
		lo, hi = min(lo, int(t.start)), max(hi, t.end())
	}
	if hi-lo > rules.limit {
		return false
	}
	covered := make([]bool, hi-lo)
	for _, t := range block {
		for i := int(t.start); i < t.end(); i++ {
			covered[i-lo] = true
		}
	}
	hole := 0
	for _, c := range covered {
		if c {
			hole = 0
		} else if hole++; hole > rules.gap {
			return false
		}
	}
	for _, c := range rules.cuts {
		if c <= lo || c >= hi {
			continue
		}
		if !slices.ContainsFunc(block, func(t *tag) bool { return int(t.start) < c && c < t.end() }) {
			return false
		}
	}
	return true
}

// bruteForce returns the fewest feasible blocks that partition tags, trying every partition.
func bruteForce(tags []*tag, rules planRules) int {
	best := len(tags)
	var blocks [][]*tag
	var rec func(i int)
	rec = func(i int) {
		if len(blocks) >= best {
			return
		}
		if i == len(tags) {
			// Holes and cuts are checked on whole blocks only: a later tag may fill a hole.
			for _, b := range blocks {
				if !feasible(b, rules) {
					return
				}
			}
			best = len(blocks)
			return
		}
		for b := range blocks {
			blocks[b] = append(blocks[b], tags[i])
			if span(blocks[b]) <= rules.limit {
				rec(i + 1)
			}
			blocks[b] = blocks[b][:len(blocks[b])-1]
		}
		blocks = append(blocks, []*tag{tags[i]})
		rec(i + 1)
		blocks = blocks[:len(blocks)-1]
	}
	rec(0)
	return best
}

func span(block []*tag) int {
	lo, hi := int(block[0].start), block[0].end()
	for _, t := range block {
		lo, hi = min(lo, int(t.start)), max(hi, t.end())
	}
	return hi - lo
}

// randomMap returns n tags of random size and position (overlaps allowed) and random rules.
func randomMap(r *rand.Rand, n int) ([]*tag, planRules) {
	rules := planRules{limit: 1 + r.IntN(16), gap: r.IntN(4)}
	tags := make([]*tag, n)
	for i := range tags {
		size := 1 + r.IntN(min(4, rules.limit))
		tags[i] = &tag{info: &drivers.TagInfo{Name: string(rune('a' + i))}, index: int32(i), table: holdingRegisters,
			start: uint16(r.IntN(40)), size: uint16(size), bit: -1}
	}
	if r.IntN(3) == 0 {
		for range 1 + r.IntN(3) {
			rules.cuts = append(rules.cuts, r.IntN(44))
		}
		slices.Sort(rules.cuts)
		rules.cuts = slices.Compact(rules.cuts)
	}
	return tags, rules
}

// checkPlan checks that reqs serve every tag exactly once and that every read is feasible.
func checkPlan(t *testing.T, tags []*tag, rules planRules, reqs []*request) {
	t.Helper()
	seen := map[*tag]int{}
	for _, r := range reqs {
		if !feasible(r.tags, rules) {
			t.Fatalf("infeasible read %+v under %+v", r, rules)
		}
		lo, hi := int(r.tags[0].start), r.tags[0].end()
		for _, x := range r.tags {
			seen[x]++
			lo, hi = min(lo, int(x.start)), max(hi, x.end())
		}
		if int(r.start) != lo || r.end() != hi {
			t.Fatalf("read %d+%d is not tight around its tags (%d…%d)", r.start, r.count, lo, hi)
		}
	}
	for _, x := range tags {
		if seen[x] != 1 {
			t.Fatalf("tag %s served %d times", x.name(), seen[x])
		}
	}
}

func TestPlanMinimal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		tags, rules := randomMap(r, 1+r.IntN(8))
		reqs := planTable(tags, rules)
		checkPlan(t, tags, rules, reqs)
		if want := bruteForce(tags, rules); len(reqs) != want {
			for _, x := range tags {
				t.Logf("tag %s %d+%d", x.name(), x.start, x.size)
			}
			t.Fatalf("map %d: planner made %d reads, brute force %d (rules %+v)", i, len(reqs), want, rules)
		}
	}
}

// optimum is an exact dynamic program over tags sorted by (start, end): the fewest reads when
// reads serve consecutive runs of that order (TestPlanMinimal shows by brute force that
// nothing is lost by that restriction on small maps). It checks the planner on large maps.
func optimum(tags []*tag, rules planRules) int {
	sorted := slices.Clone(tags)
	slices.SortStableFunc(sorted, func(a, b *tag) int {
		if a.start != b.start {
			return int(a.start) - int(b.start)
		}
		return a.end() - b.end()
	})
	n := len(sorted)
	best := make([]int, n+1) // best[i]: fewest reads for sorted[i:]
	for i := n - 1; i >= 0; i-- {
		best[i] = n + 1
		frontier := sorted[i].end()
		for j := i; j < n; j++ { // sorted[i..j] in one read
			if j > i && !fits(&request{start: sorted[i].start}, frontier, sorted[j], rules) {
				break
			}
			frontier = max(frontier, sorted[j].end())
			best[i] = min(best[i], 1+best[j+1])
		}
	}
	return best[0]
}

func TestPlanLargeMapsOptimal(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		tags, rules := bigMap(r, 2000)
		reqs := planTable(tags, rules)
		checkPlan(t, tags, rules, reqs)
		if want := optimum(tags, rules); len(reqs) != want {
			t.Fatalf("planner made %d reads, optimum %d", len(reqs), want)
		}
	}
}

// bigMap returns a realistic large map: runs of adjacent tags of mixed types with holes.
func bigMap(r *rand.Rand, n int) ([]*tag, planRules) {
	rules := planRules{limit: 125, gap: r.IntN(5)}
	tags := make([]*tag, n)
	at := 0
	sizes := []int{1, 1, 2, 2, 4, 8}
	for i := range tags {
		if r.IntN(10) == 0 {
			at += 1 + r.IntN(12)
		}
		size := sizes[r.IntN(len(sizes))]
		tags[i] = &tag{info: &drivers.TagInfo{Name: "t"}, index: int32(i), table: holdingRegisters, start: uint16(at % 60000), size: uint16(size), bit: -1}
		at += size
	}
	return tags, rules
}

func TestPlanAloneAndCuts(t *testing.T) {
	mk := func(start, size int) *tag {
		return &tag{table: holdingRegisters, start: uint16(start), size: uint16(size), bit: -1}
	}
	a, b, bad, c, d := mk(0, 2), mk(2, 1), mk(3, 1), mk(4, 2), mk(6, 1)
	bad.alone = true
	reqs := planTable([]*tag{a, b, bad, c, d}, planRules{limit: 125, cuts: []int{3, 4}})
	got := [][2]int{}
	for _, r := range reqs {
		got = append(got, [2]int{int(r.start), int(r.count)})
	}
	want := [][2]int{{0, 3}, {3, 1}, {4, 3}}
	if !slices.Equal(got, want) {
		t.Fatalf("plan %v, want %v", got, want)
	}
}

// TestPlanGolden runs testdata/plan/*.toml through the real loader and compares WritePlan's
// output with the .plan file next to it (go test -run TestPlanGolden -update rewrites them).
func TestPlanGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/plan/*.toml")
	if len(files) == 0 {
		t.Fatal("no golden plans")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := config.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			// Both drivers' devices in one plan, so that one total covers the file.
			var opts Options
			for _, cd := range append(cfg.Enabled(NameTCP), cfg.Enabled(NameRTU)...) {
				o, _ := deviceOptions(cd)
				opts.Devices = append(opts.Devices, o)
			}
			d, err := New(opts, testLogger())
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			d.WritePlan(&got)
			golden := f[:len(f)-len(".toml")] + ".plan"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("plan differs from %s:\n%s\nwant:\n%s", golden, got.Bytes(), want)
			}
		})
	}
}
