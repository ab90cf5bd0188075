package httpout

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/router/event"
)

// benchEvents returns n parsed events of ~258-byte RFC 5424 frames, with
// the fields the syslog input fills in (structured data, message).
func benchEvents(n int) []*event.Event {
	r := rand.New(rand.NewPCG(1, 2))
	paths := []string{"/api/v1/items", "/api/v1/users", "/static/app.js", "/login", "/api/v2/orders/search"}
	evs := make([]*event.Event, n)
	for i := range evs {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		host := fmt.Sprintf("web-%02d.dc1.example.com", r.IntN(20))
		procid := fmt.Sprint(1000 + r.IntN(30000))
		req, ip := fmt.Sprintf("%016x", r.Uint64()), fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256))
		msg := fmt.Sprintf("GET %s?id=%d HTTP/1.1 %d %d rt=0.%03d ua=\"Mozilla/5.0 (X11; Linux x86_64)\"",
			paths[r.IntN(len(paths))], r.IntN(1000000), []int{200, 200, 200, 304, 404, 500}[r.IntN(6)], r.IntN(100000), r.IntN(1000))
		raw := fmt.Sprintf("<134>1 %s %s nginx %s ID%d [meta@32473 req=\"%s\" ip=\"%s\"] %s",
			ts.Format("2006-01-02T15:04:05.000000Z07:00"), host, procid, i%10, req, ip, msg)
		for len(raw) < 258 {
			raw += "x"
			msg += "x"
		}
		evs[i] = &event.Event{
			Time: ts, Received: ts, Input: "bench", Stream: "syslog", Origin: "127.0.0.1:40000",
			Facility: 16, Severity: 6, Host: host, App: "nginx", ProcID: procid, MsgID: fmt.Sprintf("ID%d", i%10),
			Message: msg, Raw: []byte(raw),
			SD: event.StructuredData{{ID: "meta@32473", Params: []event.SDParam{{Name: "req", Value: req}, {Name: "ip", Value: ip}}}},
		}
	}
	return evs
}

// countingSink only counts requests and body bytes.
func countingSink(b *testing.B) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := io.Copy(io.Discard, r.Body)
		n.Add(k)
	}))
	b.Cleanup(srv.Close)
	return srv, &n
}

// BenchmarkWrite measures Write of 2,000-event batches (what the router's
// default batch.max_bytes holds) to a loopback sink that only counts, sink
// included in the CPU figures.
func BenchmarkWrite(b *testing.B) {
	for _, bc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"ndjson", func(c *Config) {}},
		{"ndjson-gzip", func(c *Config) { c.Compression = "gzip" }},
		{"ndjson-gzip-inflight2", func(c *Config) { c.Compression, c.MaxInFlight, c.MaxBodyBytes = "gzip", 2, "256KiB" }},
		{"splunk_hec", func(c *Config) { c.Encoding = "splunk_hec" }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const batch = 2000
			evs := benchEvents(batch * 4)
			srv, wire := countingSink(b)
			cfg := DefaultConfig()
			cfg.URL = srv.URL
			bc.mod(cfg)
			out, err := New(cfg, outputs.Env{Name: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer out.Close()
			ctx := context.Background()
			if err := out.Write(ctx, evs[:1]); err != nil { // connect before timing
				b.Fatal(err)
			}
			raw := int64(0)
			for _, ev := range evs[:batch] {
				raw += int64(len(ev.Raw))
			}
			b.SetBytes(raw) // MB/s of raw syslog frames
			b.ReportAllocs()
			wire.Store(0)
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				j := i % 4 * batch
				if err := out.Write(ctx, evs[j:j+batch]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			events := float64(b.N) * batch
			b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/events, "cpu-ns/event")
			b.ReportMetric(float64(wire.Load())/events, "wire-B/event")
		})
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
