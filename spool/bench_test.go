package spool

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// BenchmarkAppend appends 4096 records of 260 bytes per call, acknowledging
// each batch so that segments are reclaimed as it runs.
func BenchmarkAppend(b *testing.B) {
	for _, fs := range []FsyncPolicy{{Every: time.Second}, {}, {Always: true}} {
		b.Run("fsync="+fs.String(), func(b *testing.B) {
			q, err := Open(Options{Dir: b.TempDir(), Fsync: fs})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			rec := bytes.Repeat([]byte("r"), 260)
			recs := make([][]byte, 4096)
			for i := range recs {
				recs[i] = rec
			}
			b.SetBytes(int64(len(recs) * len(rec)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				first, _, err := q.Append(context.Background(), recs)
				if err != nil {
					b.Fatal(err)
				}
				if err := q.Ack(first, first+uint64(len(recs))-1); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkRead reads back 4096×260-byte batches written with fsync never.
func BenchmarkRead(b *testing.B) {
	q, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	rec := bytes.Repeat([]byte("r"), 260)
	recs := make([][]byte, 4096)
	for i := range recs {
		recs[i] = rec
	}
	b.SetBytes(int64(len(recs) * len(rec)))
	b.ReportAllocs()
	from := uint64(1)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, _, err := q.Append(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for got := 0; got < len(recs); {
			out, err := q.Read(context.Background(), from, 4096, 0, 0)
			if err != nil {
				b.Fatal(err)
			}
			got += len(out)
			from = out[len(out)-1].Seq + 1
		}
		if err := q.Ack(1, from-1); err != nil {
			b.Fatal(err)
		}
	}
}
