package syslog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/router/event"
)

// recorder is a test Sink that keeps every event.
type recorder struct {
	mu    sync.Mutex
	evs   []*event.Event
	emits int
	err   error // returned by Emit when set
}

func (r *recorder) Emit(_ context.Context, evs []*event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.evs = append(r.evs, evs...)
	r.emits++
	return nil
}

func (r *recorder) events() []*event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*event.Event(nil), r.evs...)
}

// wait returns once at least n events arrived, or fails after 10 s.
func (r *recorder) wait(t *testing.T, n int) []*event.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := r.events()
		if len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d events, want %d", len(evs), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer is a goroutine-safe log destination.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	in   *Input
	rec  *recorder
	m    *inputs.Metrics
	logs *syncBuffer
	stop func() // cancels Run and checks it returned nil; idempotent
}

func testConfig(listen ...string) *Config {
	cfg := DefaultConfig()
	cfg.Listen = listen
	cfg.Timezone = "UTC"
	return cfg
}

// start runs an input with a recorder sink until the test ends.
func start(t testing.TB, cfg *Config) *harness {
	t.Helper()
	rec := &recorder{}
	h := startWith(t, cfg, rec)
	h.rec = rec
	return h
}

// startWith runs an input emitting into sink until the test ends.
func startWith(t testing.TB, cfg *Config, sink inputs.Sink) *harness {
	t.Helper()
	h := &harness{m: inputs.NewDiscardMetrics(), logs: &syncBuffer{}}
	in, err := New(cfg, inputs.Env{
		Name:    "test",
		Logger:  slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: h.m,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.in = in.(*Input)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.in.Run(ctx, sink) }()
	select {
	case <-h.in.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("not ready")
	}
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(h.stop)
	return h
}

// addr returns the bound address of the first listener of network type
// ("tcp" or "udp").
func (h *harness) addr(t testing.TB, network string) string {
	t.Helper()
	for _, a := range h.in.Addrs() {
		if a.Network() == network {
			return a.String()
		}
	}
	t.Fatalf("no %s listener in %v", network, h.in.Addrs())
	return ""
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitClosed fails unless the server closes c within 10 s.
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf [64]byte
	for {
		_, err := c.Read(buf[:])
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("connection not closed by the server")
		}
		return
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dropped(h *harness, reason string) float64 {
	return testutil.ToFloat64(h.m.Dropped.WithLabelValues(reason))
}

func TestConfigDefaults(t *testing.T) {
	cfg := DefaultConfig()
	want := &Config{Stream: "syslog", Format: "auto", MaxMessageBytes: 65536, IdleTimeout: "5m",
		MaxConnections: 1024, UDPReadBuffer: "32MiB", UDPReaders: 2, Timezone: "Local"}
	if fmt.Sprint(cfg) != fmt.Sprint(want) {
		t.Errorf("DefaultConfig() = %+v", cfg)
	}
	cfg.Listen = []string{"udp://0.0.0.0:5514", "tcp://[::1]:601", "tcp4://:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"}
	in, err := New(cfg, inputs.Env{Name: "x", Metrics: inputs.NewDiscardMetrics()})
	if err != nil {
		t.Fatal(err)
	}
	s := in.(*Input).s
	if s.idle != 5*time.Minute || s.udpBuf != 32<<20 || s.loc != time.Local || len(s.listen) != 5 {
		t.Errorf("settings %+v", s)
	}
	if in.(*Input).Addrs() != nil {
		t.Error("Addrs before Run")
	}
}

func TestConfigErrors(t *testing.T) {
	cfg := &Config{
		Listen:          []string{"udp//x:1", "http://x:1", "tcp://x", "tcp://x:99999", "tcp://h:514", "tcp://h:514"},
		Stream:          "",
		Format:          "json",
		MaxMessageBytes: 17 << 20,
		IdleTimeout:     "soon",
		MaxConnections:  0,
		UDPReadBuffer:   "lots",
		UDPReaders:      0,
		Timezone:        "Mars/Olympus",
	}
	_, err := New(cfg, inputs.Env{})
	if err == nil {
		t.Fatal("no error")
	}
	fields := map[string]int{}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *conf.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("not a FieldError: %v", e)
		}
		fields[fe.Field]++
	}
	want := map[string]int{"listen": 5, "stream": 1, "format": 1, "max_message_bytes": 1, "idle_timeout": 1,
		"max_connections": 1, "udp_read_buffer": 1, "udp_readers": 1, "timezone": 1}
	if fmt.Sprint(fields) != fmt.Sprint(want) {
		t.Errorf("fields %v, want %v\n%v", fields, want, err)
	}
	if _, err := New(&Config{Listen: nil, Stream: "s", Format: "auto", MaxMessageBytes: 1, IdleTimeout: "0",
		MaxConnections: 1, UDPReadBuffer: "0", UDPReaders: 1, Timezone: "UTC"}, inputs.Env{}); err == nil ||
		!strings.Contains(err.Error(), "listen") {
		t.Errorf("missing listen: %v", err)
	}
}

func TestTCPFraming(t *testing.T) {
	h := start(t, testConfig("tcp://127.0.0.1:0"))
	c := dial(t, h.addr(t, "tcp"))
	m5424 := `<165>1 2003-10-11T22:14:15.003Z host1 app1 12 ID1 [a@1 k="v"] octet framed`
	stream := fmt.Sprintf("%d %s", len(m5424), m5424) +
		"<13>Oct 11 22:14:15 host2 app2[7]: lf framed\n" +
		"<13>Oct 11 22:14:15 host3 app3: nul framed\x00" +
		"<13>Oct 11 22:14:15 host4 app4: crlf framed\r\n" +
		"not syslog at all\n" +
		"<13>Oct 11 22:14:15 host5 app5: unterminated"
	if _, err := c.Write([]byte(stream)); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	waitClosed(t, c)
	evs := h.rec.wait(t, 6)
	want := []struct{ host, app, msg, raw string }{
		{"host1", "app1", "octet framed", m5424},
		{"host2", "app2", "lf framed", "<13>Oct 11 22:14:15 host2 app2[7]: lf framed"},
		{"host3", "app3", "nul framed", "<13>Oct 11 22:14:15 host3 app3: nul framed"},
		{"host4", "app4", "crlf framed", "<13>Oct 11 22:14:15 host4 app4: crlf framed"},
		{"127.0.0.1", "", "not syslog at all", "not syslog at all"},
		{"host5", "app5", "unterminated", "<13>Oct 11 22:14:15 host5 app5: unterminated"},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events", len(evs))
	}
	for i, w := range want {
		ev := evs[i]
		if ev.Host != w.host || ev.App != w.app || ev.Message != w.msg || string(ev.Raw) != w.raw {
			t.Errorf("event %d: host=%q app=%q msg=%q raw=%q, want %+v", i, ev.Host, ev.App, ev.Message, ev.Raw, w)
		}
		if ev.Origin != c.LocalAddr().String() || ev.Input != "test" || ev.Stream != "syslog" {
			t.Errorf("event %d: origin=%q input=%q stream=%q", i, ev.Origin, ev.Input, ev.Stream)
		}
		if ev.Received.IsZero() || ev.Time.IsZero() {
			t.Errorf("event %d: zero times", i)
		}
	}
	if sdGet(evs[0].SD, "a@1", "k") != "v" || evs[0].ProcID != "12" || evs[0].MsgID != "ID1" || evs[0].Facility != 20 || evs[0].Severity != 5 {
		t.Errorf("event 0: %+v", evs[0])
	}
	if evs[4].Facility != -1 || evs[4].Severity != -1 {
		t.Errorf("unparseable: %+v", evs[4])
	}
	if n := testutil.ToFloat64(h.m.ParseFailures); n != 1 {
		t.Errorf("ParseFailures = %v", n)
	}
	if n := testutil.ToFloat64(h.m.Events); n != 6 {
		t.Errorf("Events = %v", n)
	}
	eventually(t, "connections gauge back to 0", func() bool { return testutil.ToFloat64(h.m.Connections) == 0 })
}

func TestTCPBadInput(t *testing.T) {
	cfg := testConfig("tcp://127.0.0.1:0")
	cfg.MaxMessageBytes = 100
	h := start(t, cfg)
	addr := h.addr(t, "tcp")

	// Garbage, an oversize octet frame, an oversize line, then good frames
	// on the same connection.
	c := dial(t, addr)
	big := strings.Repeat("x", 500)
	fmt.Fprintf(c, "\x00\x01\x02\xff\xfe\n")
	fmt.Fprintf(c, "%d %s", len(big), big)
	fmt.Fprintf(c, "%s\n", big)
	fmt.Fprintf(c, "<13>Oct 11 22:14:15 host app: still here\n")
	evs := h.rec.wait(t, 2)
	if string(evs[0].Raw) != "\x01\x02\xff\xfe" || evs[1].Message != "still here" {
		t.Errorf("events %q %q", evs[0].Raw, evs[1].Message)
	}
	if n := dropped(h, "oversize"); n != 2 {
		t.Errorf("oversize = %v, want 2", n)
	}

	// MSGLEN 10^12: counted and the connection closed.
	c2 := dial(t, addr)
	fmt.Fprintf(c2, "1000000000000 <13>Oct 11 22:14:15 host app: x")
	waitClosed(t, c2)
	if n := dropped(h, "bad_frame"); n != 1 {
		t.Errorf("bad_frame = %v, want 1", n)
	}

	// A truncated octet frame at close is counted; an unterminated line is
	// delivered.
	c3 := dial(t, addr)
	fmt.Fprintf(c3, "50 <13>Oct 11 22:14:15 host app: cut")
	_ = c3.Close()
	eventually(t, "truncated frame counted", func() bool { return dropped(h, "truncated") == 1 })
	c4 := dial(t, addr)
	fmt.Fprintf(c4, "<13>Oct 11 22:14:15 host app: no newline")
	_ = c4.Close()
	evs = h.rec.wait(t, 3)
	if evs[2].Message != "no newline" {
		t.Errorf("unterminated line: %q", evs[2].Message)
	}
	// The first connection still works.
	fmt.Fprintf(c, "5 hello")
	evs = h.rec.wait(t, 4)
	if string(evs[3].Raw) != "hello" {
		t.Errorf("after bad input: %q", evs[3].Raw)
	}
}

func TestIdleTimeout(t *testing.T) {
	cfg := testConfig("tcp://127.0.0.1:0")
	cfg.IdleTimeout = "200ms"
	h := start(t, cfg)
	c := dial(t, h.addr(t, "tcp"))
	fmt.Fprintf(c, "<13>Oct 11 22:14:15 host app: hi\n")
	h.rec.wait(t, 1)
	t0 := time.Now()
	waitClosed(t, c)
	if d := time.Since(t0); d < 100*time.Millisecond {
		t.Errorf("closed after %v, before the idle timeout", d)
	}
	eventually(t, "connections gauge back to 0", func() bool { return testutil.ToFloat64(h.m.Connections) == 0 })
	if !strings.Contains(h.logs.String(), "idle connection closed") {
		t.Errorf("no debug log of the idle close:\n%s", h.logs)
	}
}

func TestMaxConnections(t *testing.T) {
	cfg := testConfig("tcp://127.0.0.1:0")
	cfg.MaxConnections = 3
	h := start(t, cfg)
	addr := h.addr(t, "tcp")
	var idle []net.Conn
	for range 3 {
		idle = append(idle, dial(t, addr))
	}
	eventually(t, "3 connections", func() bool { return testutil.ToFloat64(h.m.Connections) == 3 })
	for range 5 {
		waitClosed(t, dial(t, addr))
	}
	if n := dropped(h, "max_connections"); n != 5 {
		t.Errorf("max_connections drops = %v, want 5", n)
	}
	if got := strings.Count(h.logs.String(), "too many connections"); got != 1 {
		t.Errorf("warning logged %d times, want 1 (rate-limited)", got)
	}
	// Freeing a slot lets a well-behaved client in.
	_ = idle[0].Close()
	eventually(t, "slot freed", func() bool { return testutil.ToFloat64(h.m.Connections) == 2 })
	c := dial(t, addr)
	fmt.Fprintf(c, "<13>Oct 11 22:14:15 host app: got in\n")
	if evs := h.rec.wait(t, 1); evs[0].Message != "got in" {
		t.Errorf("message %q", evs[0].Message)
	}
}

func TestManyIdleConnections(t *testing.T) {
	const n = 1000
	h := start(t, testConfig("tcp://127.0.0.1:0"))
	addr := h.addr(t, "tcp")
	for i := range n {
		c := dial(t, addr)
		if i%10 == 0 {
			fmt.Fprintf(c, "<13>Oct 11 22:14:15 host app: partial, never end") // holds a partial frame
		}
	}
	eventually(t, "all connections admitted", func() bool { return testutil.ToFloat64(h.m.Connections) == n })
	c := dial(t, addr)
	for i := range 100 {
		fmt.Fprintf(c, "<13>Oct 11 22:14:15 host app: msg %d\n", i)
	}
	evs := h.rec.wait(t, 100)
	if evs[99].Message != "msg 99" {
		t.Errorf("last message %q", evs[99].Message)
	}
	if n := dropped(h, "max_connections"); n != 0 {
		t.Errorf("max_connections drops = %v", n)
	}
	h.stop()
	// At shutdown the partial lines of the idle connections are delivered
	// as unterminated frames: nothing already read is lost.
	if got := len(h.rec.events()); got != 100+n/10 {
		t.Errorf("%d events after shutdown; want %d", got, 100+n/10)
	}
}

func TestEmitErrorClosesConnection(t *testing.T) {
	h := start(t, testConfig("tcp://127.0.0.1:0"))
	h.rec.mu.Lock()
	h.rec.err = inputs.ErrClosed
	h.rec.mu.Unlock()
	c := dial(t, h.addr(t, "tcp"))
	fmt.Fprintf(c, "<13>Oct 11 22:14:15 host app: refused\n")
	waitClosed(t, c)
	if n := dropped(h, "shutdown"); n != 1 {
		t.Errorf("shutdown drops = %v", n)
	}
}

func TestBindFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := "tcp://" + ln.Addr().String()
	in, err := New(testConfig("udp://127.0.0.1:0", "tcp://127.0.0.1:0", taken), inputs.Env{Name: "x", Metrics: inputs.NewDiscardMetrics()})
	if err != nil {
		t.Fatal(err)
	}
	err = in.Run(context.Background(), &recorder{})
	if err == nil || !strings.Contains(err.Error(), taken) {
		t.Fatalf("Run = %v, want an error naming %s", err, taken)
	}
	select {
	case <-in.(*Input).Ready():
		t.Error("Ready closed after a bind failure")
	default:
	}
	if err := in.Run(context.Background(), &recorder{}); err == nil {
		t.Error("second Run succeeded")
	}
}

func TestShutdownEndsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	cfg := testConfig("tcp://127.0.0.1:0", "udp://127.0.0.1:0", "tcp://127.0.0.1:0")
	cfg.UDPReaders = 3
	h := start(t, cfg)
	var conns []net.Conn
	for range 20 {
		conns = append(conns, dial(t, h.addr(t, "tcp")))
	}
	eventually(t, "connections", func() bool { return testutil.ToFloat64(h.m.Connections) == 20 })
	h.stop()
	for _, c := range conns {
		waitClosed(t, c)
		_ = c.Close()
	}
	eventually(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	if n := testutil.ToFloat64(h.m.Connections); n != 0 {
		t.Errorf("connections gauge %v after shutdown", n)
	}
}

func TestUDP(t *testing.T) {
	cfg := testConfig("udp://127.0.0.1:0")
	cfg.MaxMessageBytes = 1000
	h := start(t, cfg)
	addr := h.addr(t, "udp")
	logs := h.logs.String()
	if !strings.Contains(logs, "rcvbuf_granted=") || !strings.Contains(logs, "sockets=2") {
		t.Errorf("granted buffer not logged:\n%s", logs)
	}
	t.Log(strings.TrimSpace(logs))

	const senders, perSender, burst = 4, 2500, 100
	var clients []net.Conn
	for range senders {
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	sent := 0
	for i := range perSender {
		for s, c := range clients {
			if _, err := fmt.Fprintf(c, "<13>1 2026-11-22T10:00:00Z host%d app - - - datagram %d\n", s, i); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		if sent%burst == 0 {
			h.rec.wait(t, sent) // keep within the socket buffer
		}
	}
	evs := h.rec.wait(t, sent)
	perHost := map[string]int{}
	for _, ev := range evs {
		perHost[ev.Host]++
		if ev.App != "app" || !strings.HasPrefix(ev.Message, "datagram ") || bytes.HasSuffix(ev.Raw, []byte("\n")) {
			t.Fatalf("event %+v", ev)
		}
		if !strings.HasPrefix(ev.Origin, "127.0.0.1:") {
			t.Fatalf("origin %q", ev.Origin)
		}
	}
	for s := range senders {
		if perHost[fmt.Sprintf("host%d", s)] != perSender {
			t.Errorf("host%d: %d events", s, perHost[fmt.Sprintf("host%d", s)])
		}
	}
	if got := testutil.ToFloat64(h.m.Events); got != float64(sent) {
		t.Errorf("Events = %v, want %d", got, sent)
	}
	h.rec.mu.Lock()
	emits := h.rec.emits
	h.rec.mu.Unlock()
	t.Logf("%d datagrams in %d Emits", sent, emits)

	// Oversize and empty datagrams are not events.
	fmt.Fprintf(clients[0], "%s", strings.Repeat("z", 1001))
	fmt.Fprintf(clients[0], "\n")
	fmt.Fprintf(clients[0], "<13>Oct 11 22:14:15 host app: after\n")
	evs = h.rec.wait(t, sent+1)
	if last := evs[len(evs)-1]; last.Message != "after" || len(evs) != sent+1 {
		t.Errorf("after oversize: %d events, last %q", len(evs), last.Message)
	}
	if n := dropped(h, "oversize"); n != 1 {
		t.Errorf("oversize = %v", n)
	}
}

// The real util-linux logger as a client.
func TestLogger(t *testing.T) {
	path, err := exec.LookPath("logger")
	if err != nil {
		t.Skip("logger not installed")
	}
	h := start(t, testConfig("tcp://127.0.0.1:0", "udp://127.0.0.1:0"))
	_, tport, _ := net.SplitHostPort(h.addr(t, "tcp"))
	_, uport, _ := net.SplitHostPort(h.addr(t, "udp"))
	cases := []struct {
		name string
		args []string
		want string // Raw prefix, after the PRI
		sd   bool
	}{
		{"tcp octet-count rfc5424", []string{"--tcp", "--octet-count", "-P", tport, "--rfc5424", "--sd-id", "zoo@123", "--sd-param", `tiger="hungry"`}, "<13>1 ", true},
		{"tcp newline rfc5424", []string{"--tcp", "-P", tport, "--rfc5424"}, "<13>1 ", false},
		{"tcp newline rfc3164", []string{"--tcp", "-P", tport, "--rfc3164"}, "<13>", false},
		{"tcp octet-count rfc3164", []string{"--tcp", "--octet-count", "-P", tport, "--rfc3164"}, "<13>", false},
		{"udp rfc5424", []string{"--udp", "-P", uport, "--rfc5424"}, "<13>1 ", false},
		{"udp rfc3164", []string{"--udp", "-P", uport, "--rfc3164"}, "<13>", false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := fmt.Sprintf("hello from logger %d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			args := append([]string{"-n", "127.0.0.1", "-t", "myapp"}, tc.args...)
			out, err := exec.CommandContext(ctx, path, append(args, msg)...).CombinedOutput()
			if err != nil {
				t.Fatalf("logger: %v: %s", err, out)
			}
			evs := h.rec.wait(t, i+1)
			ev := evs[i]
			if ev.App != "myapp" || ev.Message != msg || ev.Facility != 1 || ev.Severity != 5 {
				t.Errorf("event: app=%q msg=%q fac=%d sev=%d raw=%q", ev.App, ev.Message, ev.Facility, ev.Severity, ev.Raw)
			}
			if !bytes.HasPrefix(ev.Raw, []byte(tc.want)) || !bytes.HasSuffix(ev.Raw, []byte(msg)) {
				t.Errorf("raw %q", ev.Raw)
			}
			if tc.sd && sdGet(ev.SD, "zoo@123", "tiger") != "hungry" {
				t.Errorf("sd %v", ev.SD)
			}
			if d := time.Since(ev.Time); d < -time.Minute || d > time.Minute {
				t.Errorf("time %v (raw %q)", ev.Time, ev.Raw)
			}
		})
	}
	if n := testutil.ToFloat64(h.m.ParseFailures); n != 0 {
		t.Errorf("ParseFailures = %v", n)
	}
}

var _ io.Writer = (*syncBuffer)(nil)

func sdGet(sd event.StructuredData, id, param string) string {
	v, _ := sd.Get(id, param)
	return v
}
