package modbus

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
)

// request is one read of one poll cycle: count registers (or bits) of a table from start,
// serving tags.
type request struct {
	table table
	start uint16
	count uint16
	tags  []*tag
	read  *op // readOp's result, built at the first poll and reused by every later one
}

// end is one past the last register or bit the request reads.
func (r *request) end() int { return int(r.start) + int(r.count) }

// planRules are the limits one table's reads must respect.
type planRules struct {
	limit int   // registers (or bits) per read
	gap   int   // unused registers (or bits) a read may span between tags
	cuts  []int // sorted positions no read may span unless a single tag does
}

// planTable returns the fewest reads that serve tags (all of one table) under rules.
//
// Tags are taken in order of start (then end). A read starts at the first tag not yet served
// and takes the following tags while the read stays within the limit, no hole between the
// registers covered so far and the next tag exceeds the gap, and no cut lies in that hole.
// This greedy is optimal: some optimal plan serves the first tag with a read starting at its
// start; among the tags after it, a tag the greedy leaves out could not have joined any read
// starting there (the gap and cut rules only get worse for tags further on, and a tag that
// breaks the limit starts a read that covers every shorter tag the greedy skipped with it), so
// by induction no plan needs fewer reads. TestPlanMinimal checks it against a brute force search.
// Tags marked alone get a read of their own.
func planTable(tags []*tag, rules planRules) []*request {
	sorted := slices.Clone(tags)
	slices.SortStableFunc(sorted, func(a, b *tag) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end(), b.end()))
	})
	var reqs []*request
	var cur *request
	frontier := 0
	for _, t := range sorted {
		if t.alone {
			reqs = append(reqs, &request{table: t.table, start: t.start, count: t.size, tags: []*tag{t}})
			continue
		}
		if cur != nil && fits(cur, frontier, t, rules) {
			cur.tags = append(cur.tags, t)
			frontier = max(frontier, t.end())
			cur.count = uint16(frontier - int(cur.start))
			continue
		}
		cur = &request{table: t.table, start: t.start, count: t.size, tags: []*tag{t}}
		frontier = t.end()
		reqs = append(reqs, cur)
	}
	slices.SortStableFunc(reqs, func(a, b *request) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end(), b.end()))
	})
	// The plan is kept until the next one: its requests' tags go into one array of exactly
	// one entry per tag (each tag is in one request), not the slack of appended slices.
	all := make([]*tag, 0, len(tags))
	for _, r := range reqs {
		n := len(all)
		all = append(all, r.tags...)
		r.tags = all[n:len(all):len(all)]
	}
	return reqs
}

// fits reports whether t may join the read r whose covered registers end at frontier.
func fits(r *request, frontier int, t *tag, rules planRules) bool {
	if t.end()-int(r.start) > rules.limit {
		return false
	}
	if int(t.start) < frontier {
		return true // overlaps what the read covers: no hole
	}
	if int(t.start)-frontier > rules.gap {
		return false
	}
	// A cut c in [frontier, t.start] would be spanned by the read but by no single tag.
	i, _ := slices.BinarySearch(rules.cuts, frontier)
	return i >= len(rules.cuts) || rules.cuts[i] > int(t.start)
}

// replan plans every table of the device again. Callers hold d.planMu.
func (d *device) replan() {
	byTable := map[table][]*tag{}
	for i := range d.tags {
		t := &d.tags[i]
		byTable[t.table] = append(byTable[t.table], t)
	}
	// A new slice, never d.reqs[:0]: plan hands the current one out without copying, and a
	// poll cycle that splits a read replans while it still iterates the old one.
	var reqs []*request
	for _, tb := range []table{coils, discreteInputs, inputRegisters, holdingRegisters} {
		if len(byTable[tb]) == 0 {
			continue
		}
		reqs = append(reqs, planTable(byTable[tb], d.rules(tb))...)
	}
	d.reqs = reqs
}

// rules returns the planning rules of one of the device's tables.
func (d *device) rules(tb table) planRules {
	r := planRules{limit: d.maxRegs, gap: d.maxGap, cuts: d.cuts[tb]}
	if tb.isBit() {
		r.limit = d.maxBits
	}
	return r
}

// plan returns a snapshot of the device's current reads: the plan's own slice, which replan
// replaces and never modifies, so that a poll cycle allocates nothing for it. Read only.
func (d *device) plan() []*request {
	d.planMu.Lock()
	defer d.planMu.Unlock()
	return d.reqs
}

// WritePlan prints, for `wellgate check -plan`, every read of every device's poll cycle and,
// on the last line, "N requests per poll cycle".
func (d *Driver) WritePlan(w io.Writer) {
	total := 0
	for _, dev := range d.devices {
		reqs := dev.plan()
		fmt.Fprintf(w, "device %q (%s %s unit %d, every %v): %d requests\n",
			dev.name, dev.driver, strings.TrimPrefix(strings.TrimPrefix(dev.endpoint, "tcp "), "rtu "),
			dev.unit, dev.interval, len(reqs))
		for _, r := range reqs {
			names := make([]string, len(r.tags))
			for i, t := range r.tags {
				names[i] = t.name()
			}
			fmt.Fprintf(w, "  %-17s start %5d (%s) count %4d  tags: %s\n",
				r.table, r.start, address{table: r.table, offset: r.start, bit: -1, zeroBased: dev.zeroBased}, r.count, strings.Join(names, ", "))
		}
		total += len(reqs)
	}
	fmt.Fprintf(w, "%d requests per poll cycle\n", total)
}
