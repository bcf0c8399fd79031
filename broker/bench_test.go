package broker

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Benchmarks for the note. Run them with
//
//	go test -run '^$' -bench . -benchtime 20000x ./broker/
//
// (BenchmarkSessionsMemory measures once, whatever b.N.)

// BenchmarkThroughput publishes as the gateway does (in process) to 10 paho subscribers on
// loopback, at QoS 0 and 1, keeping at most 512 messages on the way so that no subscriber's
// write queue overflows. msgs/s is what each subscriber receives.
func BenchmarkThroughput(b *testing.B) {
	for _, qos := range []byte{0, 1} {
		b.Run(fmt.Sprintf("QoS%d-10subscribers", qos), func(b *testing.B) {
			br := start(b, Options{MaxClients: 20})
			url := "tcp://" + br.Addr().String()
			var counts [10]atomic.Int64
			for i := range counts {
				c := dial(b, pahoOpts(url, "sub"+strconv.Itoa(i), true))
				subscribe(b, c, "bench/#", qos, func(paho.Client, paho.Message) { counts[i].Add(1) })
			}
			slowest := func() int64 {
				m := counts[0].Load()
				for i := range counts {
					m = min(m, counts[i].Load())
				}
				return m
			}
			payload := make([]byte, 100)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for int64(i)-slowest() > 512 {
					runtime.Gosched()
				}
				if err := br.Publish("bench/well1/level", qos, false, payload); err != nil {
					b.Fatal(err)
				}
			}
			for slowest() < int64(b.N) {
				runtime.Gosched()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(10*b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkSyncPersistence is the cost of one QoS 1 message queued for an away persistent
// session, in memory and in pebble (synced). Every 50,000 messages the session comes back to
// drain its queue (not timed).
func BenchmarkSyncPersistence(b *testing.B) {
	for _, persist := range []bool{false, true} {
		name := "memory"
		if persist {
			name = "pebble-sync"
		}
		b.Run(name+"/away", func(b *testing.B) {
			o := Options{MaxQueued: maxQueuedLimit, MaxQueuedBytes: 1 << 30, MaxQueuedTotalBytes: 1 << 30}
			if persist {
				o.DataDir = b.TempDir()
			}
			br := start(b, o)
			url := "tcp://" + br.Addr().String()
			away := func() {
				c := dial(b, pahoOpts(url, "historian", false))
				subscribe(b, c, "tags/#", 1, nil)
				eventually(b, time.Minute, "the queue drained", func() bool { return br.Stats().QueuedMessages == 0 })
				c.Disconnect(50)
				eventually(b, 5*time.Second, "away", func() bool { return br.Stats().Sessions == 1 })
			}
			away()
			payload := make([]byte, 100)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i > 0 && i%50_000 == 0 {
					b.StopTimer()
					away()
					b.StartTimer()
				}
				if err := br.Publish("tags/level", 1, false, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/online", func(b *testing.B) {
			o := Options{}
			if persist {
				o.DataDir = b.TempDir()
			}
			br := start(b, o)
			var got atomic.Int64
			c := dial(b, pahoOpts("tcp://"+br.Addr().String(), "historian", false))
			subscribe(b, c, "tags/#", 1, func(paho.Client, paho.Message) { got.Add(1) })
			payload := make([]byte, 100)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for int64(i)-got.Load() > 512 {
					runtime.Gosched()
				}
				if err := br.Publish("tags/level", 1, false, payload); err != nil {
					b.Fatal(err)
				}
			}
			for got.Load() < int64(b.N) {
				runtime.Gosched()
			}
		})
	}
}

const memChildEnv = "WELLGATE_BROKER_MEM_CHILD"

// BenchmarkSessionsMemory measures a broker process (a child: this test binary) with 1,000
// idle persistent sessions: connected (keepalive 60 s, one subscription each), then away.
// It reports the child's RSS and Go heap growth per session.
func BenchmarkSessionsMemory(b *testing.B) {
	if os.Getenv(memChildEnv) != "" {
		memChild()
		return
	}
	const sessions = 1000
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^BenchmarkSessionsMemory$", "-test.benchtime=1x")
	cmd.Env = append(os.Environ(), memChildEnv+"=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	ask := func(q string) (rss, heap float64) {
		fmt.Fprintln(stdin, q)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "mem" {
				rss, _ = strconv.ParseFloat(f[1], 64)
				heap, _ = strconv.ParseFloat(f[2], 64)
				return rss, heap
			}
		}
		b.Fatal("child exited")
		return 0, 0
	}
	var addr string
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "addr "); ok {
			addr = a
			break
		}
	}
	rss0, heap0 := ask("mem")
	conns := make([]net.Conn, sessions)
	for i := range conns {
		conns[i] = rawPersistent(b, addr, "idle-"+strconv.Itoa(i))
	}
	rss1, heap1 := ask("mem")
	for _, c := range conns {
		c.Close()
	}
	rss2, heap2 := ask("away")
	b.ReportMetric((rss1-rss0)/sessions, "RSS-KiB/connected-session")
	b.ReportMetric((heap1-heap0)/sessions, "heap-KiB/connected-session")
	b.ReportMetric((rss2-rss0)/sessions, "RSS-KiB/away-session")
	b.ReportMetric((heap2-heap0)/sessions, "heap-KiB/away-session")
	b.ReportMetric(rss1/1024, "RSS-MiB-connected")
	b.Logf("child RSS %.1f → %.1f MiB with %d connected sessions, %.1f MiB with them away; heap %.1f → %.1f / %.1f MiB",
		rss0/1024, rss1/1024, sessions, rss2/1024, heap0/1024, heap1/1024, heap2/1024)
}

// rawPersistent connects a minimal MQTT 3.1.1 client with clean session = false and one QoS 1
// subscription (a raw socket, so that the client side costs the benchmark nothing).
func rawPersistent(b *testing.B, addr, id string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	body := append([]byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x00, 0, 60, byte(len(id) >> 8), byte(len(id))}, id...)
	filter := "tags/" + id + "/#"
	sub := append([]byte{0, 1, byte(len(filter) >> 8), byte(len(filter))}, filter...)
	sub = append(sub, 1)
	msg := append(append([]byte{0x10}, varint(len(body))...), body...)
	msg = append(append(append(msg, 0x82), varint(len(sub))...), sub...)
	if _, err := c.Write(msg); err != nil {
		b.Fatal(err)
	}
	ack := make([]byte, 4+5) // CONNACK, SUBACK
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[4] != 0x90 {
		b.Fatalf("%s: acks %x %v", id, ack, err)
	}
	return c
}

// memChild serves a broker and answers "mem" (and "away": once no client is connected) with
// its RSS and Go heap in KiB.
func memChild() {
	b, err := New(Options{Listen: "127.0.0.1:0", MaxClients: 2000, DataDir: os.Getenv("TMPDIR") + "/wellgate-mem-" + strconv.Itoa(os.Getpid()),
		Logger: sloggerTo(io.Discard)})
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(os.Getenv("TMPDIR") + "/wellgate-mem-" + strconv.Itoa(os.Getpid()))
	if err := b.Serve(); err != nil {
		panic(err)
	}
	fmt.Println("addr " + b.Addr().String())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "away" {
			for b.Clients() > 0 {
				time.Sleep(10 * time.Millisecond)
			}
		}
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Printf("mem %d %d\n", rssKiB(), m.HeapInuse>>10)
	}
	_ = b.Close()
}

func rssKiB() int {
	data, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}
