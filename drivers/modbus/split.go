package modbus

import (
	"slices"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// split handles "illegal data address" in answer to the merged read r: it reads r's tags one
// by one (so this cycle still gets every readable value), isolates the tags the device refuses
// and plans the device again around them. When every tag reads on its own, the refused register
// lies in a hole the read spanned, and the holes of r become cuts. The new plan is kept.
func (e *endpoint) split(d *device, r *request, samples []drivers.Sample) error {
	var refused []*tag
	for _, t := range r.tags {
		one := &request{table: r.table, start: t.start, count: t.size, tags: []*tag{t}}
		data, err := e.read(d, one)
		switch {
		case err == nil:
			if err := decodeResponse(one, data, time.Now(), samples); err != nil {
				d.stats.failed(kindGarbage, err, time.Now())
				e.link.close()
				return err
			}
		case isIllegalAddress(err):
			refused = append(refused, t)
		case errorKind(err) != kindException:
			return err
		}
	}
	d.planMu.Lock()
	defer d.planMu.Unlock()
	for _, t := range refused {
		d.log.Warn("device refuses this tag's address; reading it on its own", "tag", t.name,
			"address", address{table: t.table, offset: t.start, bit: t.bit}.String())
		t.alone = true
		d.addCut(t.table, int(t.start))
		d.addCut(t.table, t.end())
	}
	if len(refused) == 0 && !d.cutHoles(r) {
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
