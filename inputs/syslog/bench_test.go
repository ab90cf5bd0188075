package syslog

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/router/event"
)

// msg5424 returns an RFC 5424 message of about 250 bytes.
func msg5424(i int) string {
	m := fmt.Sprintf(`<165>1 2026-11-22T10:00:00.123456+01:00 web-frontend-01.example.com nginx 4242 ACCESS [meta@32473 seq="%d" zone="eu-west-1"] GET /api/v1/items?id=%d HTTP/1.1 200 512 "-" "Mozilla/5.0 (X11; Linux x86_64)"`, i, i)
	return m + strings.Repeat(".", max(0, 250-len(m)))
}

const msg3164 = `<34>Nov 22 10:00:00 web-frontend-01 sshd[4242]: Accepted publickey for deploy from 192.0.2.10 port 50022 ssh2: ED25519 SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG`

// countingSink counts events and signals when target is reached.
type countingSink struct {
	n      atomic.Int64
	target atomic.Int64
	done   chan struct{}
}

func (s *countingSink) Emit(_ context.Context, evs []*event.Event) error {
	if s.n.Add(int64(len(evs))) == s.target.Load() {
		s.done <- struct{}{}
	}
	return nil
}

func BenchmarkTCPConn(b *testing.B) {
	for _, bc := range []struct {
		name   string
		format string
		octet  bool
	}{
		{"octet/auto", "auto", true},
		{"lf/auto", "auto", false},
		{"octet/raw", "raw", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const block = 1000
			var buf bytes.Buffer
			for i := range block {
				m := msg5424(i)
				if bc.octet {
					fmt.Fprintf(&buf, "%d %s", len(m), m)
				} else {
					buf.WriteString(m)
					buf.WriteByte('\n')
				}
			}
			data := buf.Bytes()
			per := len(data) / block // messages are the same length
			cfg := testConfig("tcp://127.0.0.1:0")
			cfg.Format = bc.format
			sink := &countingSink{done: make(chan struct{}, 1)}
			h := startWith(b, cfg, sink)
			c := dial(b, h.addr(b, "tcp"))
			sink.target.Store(int64(b.N))
			b.SetBytes(int64(per))
			b.ResetTimer()
			t0 := time.Now()
			for left := b.N; left > 0; {
				n := min(left, block)
				if _, err := c.Write(data[:n*per]); err != nil {
					b.Fatal(err)
				}
				left -= n
			}
			select {
			case <-sink.done:
			case <-time.After(60 * time.Second):
				b.Fatalf("got %d of %d events", sink.n.Load(), b.N)
			}
			b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "msgs/s")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct{ name, format, msg string }{
		{"rfc5424/auto", "auto", msg5424(1)},
		{"rfc5424/rfc5424", "rfc5424", msg5424(1)},
		{"rfc3164/auto", "auto", msg3164},
		{"rfc3164/rfc3164", "rfc3164", msg3164},
		{"garbage/auto", "auto", "this is not syslog at all, just a line of text of some length"},
		{"rfc5424/raw", "raw", msg5424(1)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := newDecoder(bc.format, time.UTC, "in", "st")
			frame := []byte(bc.msg)
			recv := time.Now()
			var bt batch
			sink := inputs.SinkFunc(func(context.Context, []*event.Event) error { return nil })
			m := inputs.NewDiscardMetrics()
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				bt.add(d, frame, recv, "192.0.2.1:514", "192.0.2.1")
				if bt.len() == 256 {
					_ = bt.flush(context.Background(), sink, m)
				}
			}
		})
	}
}

func BenchmarkFramer(b *testing.B) {
	var buf bytes.Buffer
	for i := range 1000 {
		m := msg5424(i)
		if i%2 == 0 {
			fmt.Fprintf(&buf, "%d %s", len(m), m)
		} else {
			buf.WriteString(m + "\n")
		}
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data) / 1000))
	b.ReportAllocs()
	r := bytes.NewReader(data)
	f := newFramer(r, 65536, func(string) {})
	for b.Loop() {
		if _, err := f.next(true); err != nil {
			r.Reset(data)
			f = newFramer(r, 65536, func(string) {})
		}
	}
}

// BenchmarkUDP sends b.N RFC 5424 datagrams from two sockets and reports
// the rate received and the datagrams lost (if the receive buffer
// overflowed).
func BenchmarkUDP(b *testing.B) {
	for _, format := range []string{"auto", "raw"} {
		b.Run(format, func(b *testing.B) {
			cfg := testConfig("udp://127.0.0.1:0")
			cfg.Format = format
			sink := &countingSink{done: make(chan struct{}, 1)}
			h := startWith(b, cfg, sink)
			addr := h.addr(b, "udp")
			var clients []net.Conn
			for range 2 {
				c, err := net.Dial("udp", addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				clients = append(clients, c)
			}
			sink.target.Store(int64(b.N))
			msg := []byte(msg5424(1))
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			t0 := time.Now()
			var wg sync.WaitGroup
			for i, c := range clients {
				wg.Go(func() {
					for j := i; j < b.N; j += len(clients) {
						_, _ = c.Write(msg)
					}
				})
			}
			wg.Wait()
			select {
			case <-sink.done:
			case <-time.After(2 * time.Second):
			}
			got := sink.n.Load()
			b.ReportMetric(float64(got)/time.Since(t0).Seconds(), "msgs/s")
			b.ReportMetric(float64(int64(b.N)-got), "lost")
		})
	}
}
