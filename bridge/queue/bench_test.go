package queue

import (
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

func benchSample(i int) drivers.Sample {
	return drivers.Sample{
		Device: "wellpad-3", Tag: "Casing/Pressure" + strconv.Itoa(i%50),
		Value: drivers.DoubleValue(float64(i) * 0.5), Quality: drivers.Good,
		Time: time.Unix(1772366400, 0).Add(time.Duration(i) * time.Millisecond),
	}
}

// BenchmarkDiskEnqueue adds samples in batches of 100 (one poll) with the default
// group-commit interval.
func BenchmarkDiskEnqueue(b *testing.B) {
	q, err := OpenDisk(b.TempDir(), Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	recs := make([][]byte, 100)
	b.ResetTimer()
	for i := 0; i < b.N; i += 100 {
		for j := range recs {
			recs[j] = EncodeSample(recs[j][:0], benchSample(i+j))
		}
		if err := q.Add(recs...); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(q.Bytes())/float64(q.Len()), "bytes/sample")
}

// BenchmarkDiskDrain reads, decodes and acks samples 1000 at a time.
func BenchmarkDiskDrain(b *testing.B) {
	q, err := OpenDisk(b.TempDir(), Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	recs := make([][]byte, 1000)
	for i := 0; i < b.N; i += 1000 {
		for j := range recs {
			recs[j] = EncodeSample(nil, benchSample(i+j))
		}
		q.Add(recs...)
	}
	b.ResetTimer()
	for n := 0; n < b.N; {
		tx, err := q.Begin(1000)
		if err != nil || tx.Len() == 0 {
			b.Fatalf("Begin: %v, %d", err, tx.Len())
		}
		for _, r := range tx.Records {
			if _, err := DecodeSample(r); err != nil {
				b.Fatal(err)
			}
		}
		n += tx.Len()
		q.Ack(tx)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkDiskReplayTick reads, decodes and acks samples 100 at a time: what the bridge's
// replay takes per 50 ms tick at its default 2000 records/s. Each transaction should cost about
// its records, not a fixed read of the whole chunk.
func BenchmarkDiskReplayTick(b *testing.B) {
	q, err := OpenDisk(b.TempDir(), Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	recs := make([][]byte, 1000)
	for i := 0; i < b.N; i += 1000 {
		for j := range recs {
			recs[j] = EncodeSample(nil, benchSample(i+j))
		}
		q.Add(recs...)
	}
	b.ResetTimer()
	for n := 0; n < b.N; {
		tx, err := q.Begin(100)
		if err != nil || tx.Len() == 0 {
			b.Fatalf("Begin: %v, %d", err, tx.Len())
		}
		for _, r := range tx.Records {
			if _, err := DecodeSample(r); err != nil {
				b.Fatal(err)
			}
		}
		n += tx.Len()
		q.Ack(tx)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}
