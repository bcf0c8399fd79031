package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// footprintResult is the binary sizes, an idle gateway's CPU and the start-up time.
type footprintResult struct {
	sizes   []binSize
	idle    fleetResult     // one device × 10 tags at 1 s
	starts  []time.Duration // exec → NBIRTH at the subscriber
	median  time.Duration
	crossBy string
}

type binSize struct {
	name  string
	bytes int64
}

var crossTargets = []struct{ name, goarch, goarm string }{
	{"wellgate-linux-amd64", "amd64", ""},
	{"wellgate-linux-arm64", "arm64", ""},
	{"wellgate-linux-armhf", "arm", "7"},
}

func (e *env) footprint() (*footprintResult, error) {
	f := &footprintResult{crossBy: "CGO_ENABLED=0 GOOS=linux GOARCH=… [GOARM=7] go build -trimpath -ldflags '-s -w' ./cmd/wellgate"}
	for _, t := range crossTargets {
		out := filepath.Join(e.dir, "bin", t.name)
		progress("footprint: building %s", t.name)
		env := []string{"GOOS=linux", "GOARCH=" + t.goarch}
		if t.goarm != "" {
			env = append(env, "GOARM="+t.goarm)
		}
		if err := goBuild(e.src, out, env, "-trimpath", "-ldflags", "-s -w"); err != nil {
			return f, err
		}
		fi, err := os.Stat(out)
		if err != nil {
			return f, err
		}
		f.sizes = append(f.sizes, binSize{t.name, fi.Size()})
	}
	if err := e.startups(f, 5); err != nil {
		return f, err
	}
	progress("footprint: start-up to NBIRTH, median of %d: %v; idle CPU over %v", len(f.starts), f.median, e.window)
	idle, err := e.runFleet("idle", fleet{devices: 1, tags: 10, interval: time.Second, change: 10}, e.window)
	if err != nil {
		return f, fmt.Errorf("idle: %w", err)
	}
	f.idle = idle
	progress("footprint: idle CPU %.2f %% of a core, RSS %.1f MB", idle.pctCPU(idle.gw), mb(idle.rss))
	return f, nil
}

// startups starts the gateway n times against one device × 10 tags and times each from exec
// to its NBIRTH arriving at the upstream subscriber.
func (e *env) startups(f *footprintResult, n int) error {
	r, err := e.newRig("startup", rigOpts{devices: 1, tags: 10, change: 10, interval: time.Second})
	if err != nil {
		return err
	}
	defer r.close()
	for i := range n {
		for len(r.sub.nbirth) > 0 {
			<-r.sub.nbirth
		}
		if err := e.startGateway(r); err != nil {
			return err
		}
		select {
		case at := <-r.sub.nbirth:
			f.starts = append(f.starts, at.Sub(r.started))
		case <-r.gw.done:
			return fmt.Errorf("start %d: the gateway exited:\n%s", i+1, r.gw.tail())
		case <-time.After(time.Minute):
			return fmt.Errorf("start %d: no NBIRTH within a minute\n%s", i+1, r.gw.tail())
		}
		r.gw.stop(30 * time.Second)
	}
	s := slices.Clone(f.starts)
	slices.Sort(s)
	f.median = s[len(s)/2]
	return nil
}
