package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"time"
)

// outageResult is a 1-million-sample backlog drained through the whole binary.
type outageResult struct {
	fleet
	replayRate     int
	target         int
	fill           time.Duration // gateway exec → target samples queued
	peakQueued     int           // samples queued when mosquitto came back
	drain          time.Duration // mosquitto started → queue empty
	online         time.Duration // mosquitto started → upstream.state "online" first seen (reconnect backoff)
	diskMax        int64         // du of data_dir/queue, largest seen
	queueBytesMax  int64         // the gateway's own queue_bytes, largest seen
	rssBefore      int           // kB just before mosquitto came back
	rssMaxDrain    int           // kB, sampled every 200 ms while draining
	gwCPUDrain     time.Duration // gateway CPU while draining
	historical     int           // historical metrics that reached the subscriber
	dropped        int           // the queue's dropped count at the end
	historicalWait time.Duration // after the queue was empty, until they stopped coming
}

type apiStatus struct {
	Upstream struct {
		Queued     int    `json:"queued"`
		QueueBytes int64  `json:"queue_bytes"`
		Dropped    int    `json:"dropped"`
		State      string `json:"state"`
	} `json:"upstream"`
}

func queueDepth(web string) (apiStatus, error) {
	var s apiStatus
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + web + "/api/status")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("/api/status: %s", resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// outage runs 200 devices × 200 tags at 1 s, every tag changing once a second (40,000
// samples/s), with the upstream down until at least 1,000,000 samples are queued, then starts
// mosquitto and measures the drain.
func (e *env) outage(replayRate int) (*outageResult, error) {
	o := &outageResult{fleet: fleet{devices: 200, tags: 200, interval: time.Second, change: 100}, replayRate: replayRate, target: 1_000_000}
	progress("outage %v, change 100%%: queueing %d samples with mosquitto down", o.fleet, o.target)
	r, err := e.newRig("outage", rigOpts{devices: o.devices, tags: o.tags, change: o.change, interval: o.interval,
		web: true, upstreamLater: true, replayRate: replayRate})
	if err != nil {
		return o, err
	}
	defer r.close()
	if err := e.startGateway(r); err != nil {
		return o, err
	}
	qdir := filepath.Join(r.data, "queue")
	sample := func(st apiStatus) {
		o.diskMax = max(o.diskMax, dirBytes(qdir))
		o.queueBytesMax = max(o.queueBytesMax, st.Upstream.QueueBytes)
	}
	for deadline := time.Now().Add(3 * time.Minute); ; {
		st, err := queueDepth(r.web)
		if err == nil {
			sample(st)
			if st.Upstream.Queued >= o.target {
				break
			}
		}
		if r.gw.exited() {
			return o, fmt.Errorf("the gateway exited:\n%s", r.gw.tail())
		}
		if time.Now().After(deadline) {
			return o, fmt.Errorf("%d samples queued after 3 minutes (last error %v)", st.Upstream.Queued, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	o.fill = time.Since(r.started)
	pid := r.gw.pid()
	o.rssBefore = statusKB(pid, "VmRSS")
	drain0, cpu0 := time.Now(), cpuTime(pid)
	if err := r.connectUpstream(); err != nil {
		return o, err
	}
	progress("outage: %v to queue %d; mosquitto started, draining", o.fill.Round(time.Second), o.target)
	for deadline := time.Now().Add(5 * time.Minute); ; {
		o.rssMaxDrain = max(o.rssMaxDrain, statusKB(pid, "VmRSS"))
		st, err := queueDepth(r.web)
		if err == nil {
			sample(st)
			o.peakQueued = max(o.peakQueued, st.Upstream.Queued)
			o.dropped = st.Upstream.Dropped
			if o.online == 0 && st.Upstream.State == "online" {
				o.online = time.Since(drain0)
			}
			if st.Upstream.Queued == 0 {
				break
			}
		}
		if r.gw.exited() {
			return o, fmt.Errorf("the gateway exited while draining:\n%s", r.gw.tail())
		}
		if time.Now().After(deadline) {
			return o, fmt.Errorf("%d samples still queued 5 minutes after mosquitto came back (last error %v)", st.Upstream.Queued, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	o.drain, o.gwCPUDrain = time.Since(drain0), cpuTime(pid)-cpu0
	// The last historical metrics may still be on their way: wait until the count stops.
	t0, last := time.Now(), -1
	for n := r.sub.historicalMetrics(); n != last && time.Since(t0) < 30*time.Second; n = r.sub.historicalMetrics() {
		last = n
		time.Sleep(time.Second)
	}
	o.historical, o.historicalWait = last, time.Since(t0)
	progress("outage: drained in %v, %d historical metrics received, disk max %.1f MB, RSS max %.1f MB",
		o.drain.Round(100*time.Millisecond), o.historical, float64(o.diskMax)/1e6, mb(o.rssMaxDrain))
	return o, nil
}
