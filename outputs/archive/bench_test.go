package archive

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/router/event"
)

// benchEvents returns n events of ~258-byte RFC 5424 lines with realistic
// variety (request ids, addresses, latencies), all in one hour.
func benchEvents(n int) []*event.Event {
	r := rand.New(rand.NewPCG(1, 2))
	paths := []string{"/api/v1/items", "/api/v1/users", "/static/app.js", "/login", "/api/v2/orders/search"}
	evs := make([]*event.Event, n)
	for i := range evs {
		ts := hour0.Add(time.Duration(i) * time.Millisecond)
		raw := fmt.Appendf(nil, "<%d>1 %s web-%02d.dc1.example.com nginx %d ID%d [meta@32473 req=\"%016x\" ip=\"10.%d.%d.%d\"] GET %s?id=%d HTTP/1.1 %d %d rt=0.%03d ua=\"Mozilla/5.0 (X11; Linux x86_64)\"",
			134+r.IntN(3), ts.Format("2006-01-02T15:04:05.000000Z07:00"), r.IntN(20), 1000+r.IntN(30000), r.IntN(10), r.Uint64(),
			r.IntN(256), r.IntN(256), r.IntN(256), paths[r.IntN(len(paths))], r.IntN(1000000),
			[]int{200, 200, 200, 304, 404, 500}[r.IntN(6)], r.IntN(100000), r.IntN(1000))
		for len(raw) < 258 {
			raw = append(raw, 'x')
		}
		evs[i] = &event.Event{Time: ts, Received: ts, Stream: "syslog", Host: "web", Facility: 16, Severity: 6, Raw: raw[:258]}
	}
	return evs
}

func benchWrite(b *testing.B, mod func(*Config)) {
	const batch = 4096
	evs := benchEvents(batch * 4)
	dir := b.TempDir()
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(dir, "{stream}/%Y/%m/%d/%H.log.gz")
	mod(cfg)
	out, err := New(cfg, outputs.Env{StateDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	out.(outputs.Opener).Open(context.Background())
	defer out.Close()
	ctx := context.Background()
	bytesPerBatch := int64(0)
	for _, ev := range evs[:batch] {
		bytesPerBatch += int64(len(ev.Raw) + 1)
	}
	// Open the file (and write the state file) before timing.
	if err := out.Write(ctx, evs[:1]); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(bytesPerBatch)
	b.ReportAllocs()
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		off := (i % 4) * batch
		i++
		if err := out.Write(ctx, evs[off:off+batch]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
	// CPU time (user+system, all threads of the process) is steadier than
	// wall time on a shared machine.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*batch), "cpu-ns/event")
}

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkWriteNone(b *testing.B) {
	benchWrite(b, func(c *Config) { c.Compression = "none" })
}

func BenchmarkWriteGzipL1(b *testing.B) {
	benchWrite(b, func(c *Config) { c.Level = 1 })
}

func BenchmarkWriteGzipL6(b *testing.B) {
	benchWrite(b, func(c *Config) { c.Level = 6 })
}

// BenchmarkWriteNoneJSON measures encoding cost on the hot path.
func BenchmarkWriteNoneJSON(b *testing.B) {
	benchWrite(b, func(c *Config) { c.Compression, c.Format = "none", "json" })
}

// BenchmarkResolve measures the per-event path lookup with a template using
// the time and a field, over events cycling through 3 streams.
func BenchmarkResolve(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Path = "{stream}/%Y/%m/%d/%H.log.gz"
	s, err := parseConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	o := newOutput(s, outputs.Env{})
	evs := benchEvents(4096)
	for i, ev := range evs {
		ev.Stream = []string{"a", "b", "c"}[i%3]
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		o.resolve(evs[i%len(evs)])
		i++
	}
}
