package web

import (
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// /metrics: the snapshot in the Prometheus format, for a site historian or a Prometheus
// scraping the box, with the Go runtime's and the process's own metrics. A device that never
// answered has no response-time or last-success series (absent, not 0).

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("wellgate_"+name, help, labels, nil)
}

var (
	dBuild     = desc("build_info", "wellgate's version, as a label; always 1.", "version", "goversion")
	dUptime    = desc("uptime_seconds", "Seconds since the gateway started.")
	dStartTime = desc("start_time_seconds", "When the gateway started, in Unix seconds.")
	dHealthy   = desc("healthy", "1 when no part of the gateway has failed (as /healthz).")

	dDevUp        = desc("device_up", "Whether the device answers (communicating or degraded).", "device")
	dDevState     = desc("device_state", "The device's state: 1 for the current one.", "device", "state")
	dDevRequests  = desc("device_requests_total", "Requests sent to the device.", "device")
	dDevErrors    = desc("device_errors_total", "Failed requests to the device.", "device")
	dDevErrKind   = desc("device_errors_by_kind_total", "Failed requests to the device by kind (timeout, connection, crc, exception, wrong_function, …), late_reply (stale frames discarded) and poll_overrun (a poll that ran past its next start, which was skipped), which are not failed requests.", "device", "kind")
	dDevResponse  = desc("device_response_seconds", "Response time of the device's last good request.", "device")
	dDevLatency   = desc("device_response_time_seconds", "Response times of the device's good requests.", "device")
	dDevLastGood  = desc("device_last_success_timestamp_seconds", "When the device last answered a poll, in Unix seconds.", "device")
	dDevTags      = desc("device_tags", "Tags of the device.", "device")
	dDevTagsGood  = desc("device_tags_good", "Tags of the device with good quality.", "device")
	dTagsQuality  = desc("tags", "Tags by quality.", "quality")
	dDevicesState = desc("devices", "Devices by state.", "state")

	dUpEnabled   = desc("upstream_enabled", "Whether an upstream broker is configured.")
	dUpConnected = desc("upstream_connected", "Whether the upstream broker session is live.")
	dUpState     = desc("upstream_state", "The upstream connection's state: 1 for the current one.", "state")
	dUpConnects  = desc("upstream_connects_total", "Upstream connections made since start.")
	dUpAttempts  = desc("upstream_connect_attempts_total", "Upstream connection attempts since start.")
	dUpBdSeq     = desc("upstream_bdseq", "bdSeq of the current or last upstream connection.")
	dUpHost      = desc("upstream_primary_host_online", "Whether the primary host is online (absent when none is configured).")
	dQueue       = desc("queue_samples", "Records waiting in store-and-forward.")
	dQueueBytes  = desc("queue_bytes", "Bytes of the records waiting in store-and-forward.")
	dQueueAge    = desc("queue_oldest_age_seconds", "Age of the oldest record in store-and-forward (absent when empty).")
	dQueueDrop   = desc("queue_dropped_total", "Records store-and-forward dropped or refused.")
	dQueueDropBy = desc("queue_dropped_by_reason_total", "Records store-and-forward dropped or refused, by reason.", "reason")
	dMessages    = desc("sparkplug_messages_total", "Sparkplug messages published, by session and type.", "session", "type")

	dBrokerClients = desc("broker_clients", "MQTT clients connected to the embedded broker.")
	dLocalBdSeq    = desc("broker_bdseq", "bdSeq of the Sparkplug session on the embedded broker.")
	dBrokerSubs    = desc("broker_subscriptions", "Subscriptions of MQTT clients of the embedded broker, connected or away.")
	dBrokerAway    = desc("broker_away_sessions", "Persistent sessions of the embedded broker whose client is away.")
	dBrokerQueued  = desc("broker_queued_messages", "Messages waiting for away persistent sessions.")
	dBrokerRet     = desc("broker_retained_messages", "Retained messages in the embedded broker.")
	dBrokerIn      = desc("broker_messages_received_total", "PUBLISH packets the embedded broker received.")
	dBrokerOut     = desc("broker_messages_sent_total", "PUBLISH packets the embedded broker sent to clients.")
	dBrokerDenied  = desc("broker_denials_total", "Connections, subscriptions and publishes the embedded broker refused, by reason.", "reason")
	dBrokerCmds    = desc("broker_commands_total", "NCMD/DCMD accepted by the embedded broker, by user.", "user")

	dWebStreams = desc("web_streams", "Status pages open (event streams).")
	dWebConns   = desc("web_connections", "Connections open to the status page server.")
	dWebRefused = desc("web_connections_refused_total", "Connections refused because too many were open.")
	dWebEvents  = desc("web_events_total", "Change events sent to the open pages (each to every page).")
	dWebBytes   = desc("web_event_bytes_total", "Event stream bytes written to pages, before compression.")
	dWebDropped = desc("web_streams_dropped_total", "Pages dropped for falling behind the stream (they reconnect).")
	dWebAuth    = desc("web_auth_failures_total", "Failed logins to the status page.")
)

var allDescs = []*prometheus.Desc{dBuild, dUptime, dStartTime, dHealthy, dDevUp, dDevState, dDevRequests,
	dDevErrors, dDevErrKind, dDevResponse, dDevLatency, dDevLastGood, dDevTags, dDevTagsGood, dTagsQuality,
	dDevicesState, dUpEnabled, dUpConnected, dUpState, dUpConnects, dUpAttempts, dUpBdSeq, dUpHost, dQueue,
	dQueueBytes, dQueueAge, dQueueDrop, dQueueDropBy, dMessages, dBrokerClients, dLocalBdSeq, dBrokerSubs, dBrokerAway,
	dBrokerQueued, dBrokerRet, dBrokerIn, dBrokerOut, dBrokerDenied, dBrokerCmds, dWebStreams,
	dWebConns, dWebRefused, dWebEvents, dWebBytes, dWebDropped, dWebAuth}

var deviceStates = []string{StateConnecting, StateCommunicating, StateDegraded, StateDown, StateDisabled}

var upstreamStates = []string{UpstreamDisconnected, UpstreamConnecting, UpstreamWaitingHost, UpstreamOnline}

// collector reads a Snapshot at every scrape.
type collector struct{ s *Server }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.s.src.Snapshot()
	now := c.s.now()
	e := emitter{ch}
	version := snap.Version
	if version == "" {
		version = c.s.opts.Version
	}
	e.gauge(dBuild, 1, version, runtime.Version())
	if !snap.Started.IsZero() {
		e.gauge(dUptime, now.Sub(snap.Started).Seconds())
		e.gauge(dStartTime, float64(snap.Started.UnixMilli())/1e3)
	}
	e.gauge(dHealthy, b2f(len(snap.Health) == 0))
	e.devices(&snap)
	e.upstream(snap.Upstream)
	if snap.Broker != "" {
		e.gauge(dBrokerClients, float64(snap.Local.Clients))
		e.gauge(dLocalBdSeq, float64(snap.Local.BdSeq))
		for _, typ := range slices.Sorted(maps.Keys(snap.Local.Messages)) {
			e.counter(dMessages, snap.Local.Messages[typ], "local", typ)
		}
		l := snap.Local
		e.gauge(dBrokerSubs, float64(l.Subscriptions))
		e.gauge(dBrokerAway, float64(l.AwaySessions))
		e.gauge(dBrokerQueued, float64(l.QueuedMessages))
		e.gauge(dBrokerRet, float64(l.Retained))
		e.counter(dBrokerIn, uint64(l.MessagesIn))
		e.counter(dBrokerOut, uint64(l.MessagesOut))
		for _, r := range slices.Sorted(maps.Keys(l.Denials)) {
			e.counter(dBrokerDenied, l.Denials[r], r)
		}
		for _, u := range slices.Sorted(maps.Keys(l.Commands)) {
			e.counter(dBrokerCmds, l.Commands[u], u)
		}
	}
	e.gauge(dWebStreams, float64(c.s.hub.streams()))
	e.gauge(dWebConns, float64(c.s.limit.open()))
	e.counter(dWebRefused, c.s.limit.refused.Load())
	e.counter(dWebEvents, c.s.hub.events.Load())
	e.counter(dWebBytes, c.s.hub.bytes.Load())
	e.counter(dWebDropped, c.s.hub.dropped.Load())
	if c.s.auth != nil {
		e.counter(dWebAuth, c.s.auth.failures.Load())
	}
}

// emitter sends constant metrics to a Collect channel.
type emitter struct{ ch chan<- prometheus.Metric }

func (e emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (e emitter) counter(d *prometheus.Desc, v uint64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func (e emitter) devices(snap *Snapshot) {
	byQuality := map[string]int{QualityGood: 0}
	byState := map[string]int{}
	for _, st := range deviceStates {
		byState[st] = 0
	}
	for i := range snap.Devices {
		d := &snap.Devices[i]
		state := d.EffectiveState()
		byState[state]++
		e.gauge(dDevUp, b2f(d.Answering()), d.Name)
		for _, st := range deviceStates {
			e.gauge(dDevState, b2f(st == state), d.Name, st)
		}
		e.counter(dDevRequests, d.Requests, d.Name)
		e.counter(dDevErrors, d.Errors, d.Name)
		for _, kind := range slices.Sorted(maps.Keys(d.ErrorsByKind)) {
			e.counter(dDevErrKind, d.ErrorsByKind[kind], d.Name, kind)
		}
		if !d.LastGood.IsZero() {
			e.gauge(dDevResponse, d.ResponseTime.Seconds(), d.Name)
			e.gauge(dDevLastGood, float64(d.LastGood.UnixMilli())/1e3, d.Name)
		}
		e.latency(d)
		good := 0
		for _, t := range d.Tags {
			byQuality[t.Quality]++
			if t.Good() {
				good++
			}
		}
		e.gauge(dDevTags, float64(len(d.Tags)), d.Name)
		e.gauge(dDevTagsGood, float64(good), d.Name)
	}
	for _, q := range slices.Sorted(maps.Keys(byQuality)) {
		e.gauge(dTagsQuality, float64(byQuality[q]), q)
	}
	for _, st := range slices.Sorted(maps.Keys(byState)) {
		e.gauge(dDevicesState, float64(byState[st]), st)
	}
}

// latency sends d's response-time histogram when the driver keeps one.
func (e emitter) latency(d *Device) {
	h := d.Latency
	if len(h.Counts) != len(LatencyBuckets)+1 {
		return
	}
	buckets := make(map[float64]uint64, len(LatencyBuckets))
	var n uint64
	for j, b := range LatencyBuckets {
		n += h.Counts[j]
		buckets[b.Seconds()] = n
	}
	n += h.Counts[len(LatencyBuckets)]
	e.ch <- prometheus.MustNewConstHistogram(dDevLatency, n, h.Sum.Seconds(), buckets, d.Name)
}

func (e emitter) upstream(u Upstream) {
	e.gauge(dUpEnabled, b2f(u.Enabled))
	if !u.Enabled {
		return
	}
	e.gauge(dUpConnected, b2f(u.Connected))
	for _, st := range upstreamStates {
		e.gauge(dUpState, b2f(st == u.State), st)
	}
	e.counter(dUpConnects, u.Connects)
	e.counter(dUpAttempts, u.Attempts)
	e.gauge(dUpBdSeq, float64(u.BdSeq))
	if u.PrimaryHost != "" {
		e.gauge(dUpHost, b2f(u.PrimaryHostState == "online"))
	}
	e.gauge(dQueue, float64(u.Queued))
	e.gauge(dQueueBytes, float64(u.QueueBytes))
	if u.Queued > 0 {
		e.gauge(dQueueAge, u.QueueOldest.Seconds())
	}
	e.counter(dQueueDrop, u.Dropped)
	for _, r := range slices.Sorted(maps.Keys(u.DroppedByReason)) {
		e.counter(dQueueDropBy, u.DroppedByReason[r], r)
	}
	for _, typ := range slices.Sorted(maps.Keys(u.Messages)) {
		e.counter(dMessages, u.Messages[typ], "upstream", typ)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// registry holds the gateway's collector, the Go and process collectors, and Options.Collectors.
func (s *Server) registry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{s: s}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range s.opts.Collectors {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return reg, nil
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog: promLogger{s}, ErrorHandling: promhttp.ContinueOnError, Timeout: 10 * time.Second,
		MaxRequestsInFlight: 2,
	})
}

type promLogger struct{ s *Server }

func (l promLogger) Println(v ...any) {
	l.s.lim.Log(l.s.log, slog.LevelWarn, "metrics", "metrics: "+fmt.Sprint(v...))
}
