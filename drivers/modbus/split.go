package modbus

import (
	"context"
	"slices"
	"strconv"

	"github.com/wellgate/wellgate/drivers"
)

// split handles "illegal data address" in answer to the merged read r: it reads r's tags one
// by one (so this cycle still gets every readable value), isolates the tags the device refuses
// and plans the device again around them. When every tag reads on its own, the refused
// register lies in a hole the read spanned: the holes are probed, halving a refused range
// until single registers remain, and only the registers refused become cuts, so reads still
// span the holes the device accepts. The new plan is kept.
func (e *endpoint) split(ctx context.Context, d *device, r *request, samples []drivers.Sample) error {
	var refused []*tag
	for _, t := range r.tags {
		one := &request{table: r.table, start: t.start, count: t.size, tags: []*tag{t}}
		data, err := e.read(ctx, d, one)
		switch {
		case err == nil:
			if err := e.decode(d, one, data, samples); err != nil {
				return err
			}
		case isIllegalAddress(err):
			refused = append(refused, t)
		case !isException(err):
			return err
		}
	}
	var holes []int
	if len(refused) == 0 {
		var err error
		if holes, err = e.probeHoles(ctx, d, r); err != nil {
			return err
		}
	}
	d.planMu.Lock()
	defer d.planMu.Unlock()
	for _, t := range refused {
		d.log.Warn("device refuses this tag's address; reading it on its own", "tag", t.name(),
			"address", address{table: t.table, offset: t.start, bit: int(t.bit), zeroBased: d.zeroBased}.String())
		t.alone = true
		d.addCut(t.table, int(t.start))
		d.addCut(t.table, t.end())
	}
	for _, at := range holes {
		d.log.Warn("device refuses an address between tags; reads no longer span it",
			"address", r.table.prefix()+":"+strconv.Itoa(at))
		d.addCut(r.table, at)
	}
	if len(refused) == 0 && len(holes) == 0 && !d.cutHoles(r) {
		for _, t := range r.tags {
			t.alone = true
		}
	}
	before := len(d.reqs)
	d.replan()
	d.log.Warn("split a read the device refused", "table", r.table.String(), "start", r.start,
		"count", r.count, "requests_before", before, "requests_now", len(d.reqs))
	return nil
}

// probeHoles returns the positions between r's tags that the device refuses to read.
func (e *endpoint) probeHoles(ctx context.Context, d *device, r *request) ([]int, error) {
	var refused []int
	frontier := r.tags[0].end()
	for _, t := range r.tags[1:] {
		if int(t.start) > frontier {
			found, err := e.refusedIn(ctx, d, r.table, frontier, int(t.start))
			if err != nil {
				return nil, err
			}
			refused = append(refused, found...)
		}
		frontier = max(frontier, t.end())
	}
	return refused, nil
}

// refusedIn returns the positions in [lo, hi) of table tb that the device refuses: it reads
// the range, and halves a refused one until single positions remain. Another exception makes
// lo a refused position, which keeps reads from spanning the range.
func (e *endpoint) refusedIn(ctx context.Context, d *device, tb table, lo, hi int) ([]int, error) {
	_, err := e.read(ctx, d, &request{table: tb, start: uint16(lo), count: uint16(hi - lo)})
	switch {
	case err == nil:
		return nil, nil
	case !isException(err):
		return nil, err
	case !isIllegalAddress(err) || hi-lo == 1:
		return []int{lo}, nil
	}
	mid := (lo + hi) / 2
	a, err := e.refusedIn(ctx, d, tb, lo, mid)
	if err != nil {
		return nil, err
	}
	b, err := e.refusedIn(ctx, d, tb, mid, hi)
	if err != nil {
		return nil, err
	}
	return append(a, b...), nil
}

// cutHoles adds a cut at every hole between r's tags; it reports whether there was one.
func (d *device) cutHoles(r *request) bool {
	frontier, found := r.tags[0].end(), false
	for _, t := range r.tags[1:] {
		if int(t.start) > frontier {
			d.addCut(r.table, frontier)
			found = true
		}
		frontier = max(frontier, t.end())
	}
	return found
}

// addCut records a position no merged read of table tb may span. Callers hold d.planMu.
func (d *device) addCut(tb table, at int) {
	cuts := d.cuts[tb]
	i, found := slices.BinarySearch(cuts, at)
	if !found {
		d.cuts[tb] = slices.Insert(cuts, i, at)
	}
}
