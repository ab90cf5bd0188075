package tail

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/router/event"
)

// writeBenchFile writes n nginx-style access log lines (~190 bytes) and
// returns the file's size.
func writeBenchFile(b *testing.B, path string, n int) int64 {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		fmt.Fprintf(w, `10.0.%d.%d - - [22/Nov/2026:10:00:%02d +0000] "GET /api/v1/items/%d HTTP/1.1" %d %d "-" "Mozilla/5.0 (X11; Linux x86_64)" rt=%d.%03d`+"\n",
			i%256, i%200, i%60, i, 200+i%5, 512+i%4096, i%3, i%1000)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	f.Close()
	return fi.Size()
}

// countSink counts events and closes done when want arrived.
type countSink struct {
	n, want int64
	done    chan struct{}
}

func (s *countSink) Emit(_ context.Context, evs []*event.Event) error {
	if atomic.AddInt64(&s.n, int64(len(evs))) == s.want {
		close(s.done)
	}
	return nil
}

// BenchmarkTail measures reading one file of b.N lines from its start,
// framing them and emitting them in batches into a sink that only counts:
// lines/s and MB/s of the input alone.
func BenchmarkTail(b *testing.B) {
	for _, bc := range []struct {
		name string
		ml   *MultilineConfig
	}{
		{"lines", nil},
		{"multiline", &MultilineConfig{Start: `^\d`}}, // every line starts a record
	} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			log := filepath.Join(dir, "bench.log")
			size := writeBenchFile(b, log, b.N)
			cfg := DefaultConfig()
			cfg.Paths = []string{log}
			cfg.Multiline = bc.ml
			in, err := New(cfg, inputs.Env{Name: "bench", StateDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			sink := &countSink{want: int64(b.N), done: make(chan struct{})}
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan error, 1)
			b.SetBytes(size / int64(b.N))
			b.ReportAllocs()
			b.ResetTimer()
			go func() { ran <- in.Run(ctx, sink) }()
			select {
			case <-sink.done:
			case <-time.After(10 * time.Minute):
				b.Fatalf("%d of %d lines", atomic.LoadInt64(&sink.n), b.N)
			}
			b.StopTimer()
			cancel()
			if err := <-ran; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
