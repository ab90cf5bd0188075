package syslogout

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/internal/testpki"
	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/router/event"
)

func build(t *testing.T, src string) (*output, error) {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "t.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	cfg := DefaultConfig()
	if d := gohcl.DecodeBody(f.Body, nil, cfg); d.HasErrors() {
		t.Fatal(d)
	}
	o, err := New(cfg, outputs.Env{Name: "fwd"})
	if err != nil {
		return nil, err
	}
	return o.(*output), nil
}

func mustBuild(t *testing.T, src string) *output {
	t.Helper()
	o, err := build(t, src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ name, src, field, want string }{
		{"no targets", `targets = []`, "targets", "at least one target"},
		{"scheme", `targets = ["http://h:1"]`, "targets", `unknown scheme "http"`},
		{"no scheme", `targets = ["h:1"]`, "targets", "invalid target"},
		{"no port", `targets = ["tcp://h"]`, "targets", "missing port"},
		{"bad port", `targets = ["tcp://h:0"]`, "targets", "port must be a number from 1 to 65535"},
		{"empty host", `targets = ["tcp://:514"]`, "targets", "the host is empty"},
		{"mode", "targets = [\"tcp://h:1\"]\nmode = \"random\"", "mode", `unknown mode "random"`},
		{"framing", "targets = [\"tcp://h:1\"]\nframing = \"lf\"", "framing", `unknown framing "lf"`},
		{"format", "targets = [\"tcp://h:1\"]\nformat = \"json\"", "format", `unknown format "json"`},
		{"timeout", "targets = [\"tcp://h:1\"]\nconnect_timeout = \"soon\"", "connect_timeout", "soon"},
		{"datagram", "targets = [\"udp://h:1\"]\nmax_datagram_bytes = 100", "max_datagram_bytes", "between 480 and 65507"},
		{"tls without tls target", "targets = [\"tcp://h:1\"]\ntls {\n}", "tls", "needs at least one tls:// target"},
		{"tls ca", "targets = [\"tls://h:1\"]\ntls {\n  ca_file = \"/nonexistent\"\n}", "tls.ca_file", "cannot read CA file"},
		{"tls version", "targets = [\"tls://h:1\"]\ntls {\n  min_version = \"1.1\"\n}", "tls.min_version", "obsolete"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := build(t, c.src)
			if err == nil {
				t.Fatal("accepted")
			}
			var fe *conf.FieldError
			found := false
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				if errors.As(e, &fe) && fe.Field == c.field && strings.Contains(fe.Err.Error(), c.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("error %q lacks %s: …%s…", err, c.field, c.want)
			}
		})
	}
}

func events(n int) []*event.Event {
	var evs []*event.Event
	for i := range n {
		raw := fmt.Sprintf("<165>1 2026-12-04T10:00:00.123Z host app %d ID47 - message %d  ünï", i, i)
		evs = append(evs, &event.Event{Raw: []byte(raw), Message: fmt.Sprintf("message %d", i), Facility: 20, Severity: 5,
			Host: "host", App: "app", ProcID: strconv.Itoa(i), Time: time.Date(2026, 12, 4, 9, 5, 7, 0, time.UTC)})
	}
	return evs
}

// sink is a TCP (or TLS) syslog receiver recording everything it reads.
type sink struct {
	ln    net.Listener
	mu    sync.Mutex
	data  []byte
	conns int
	wg    sync.WaitGroup
	open  []net.Conn
}

func newSink(t *testing.T, tlsCfg *tls.Config) *sink {
	t.Helper()
	return newSinkAt(t, "127.0.0.1:0", tlsCfg)
}

func newSinkAt(t *testing.T, addr string, tlsCfg *tls.Config) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s := &sink{ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.open = append(s.open, c)
			s.mu.Unlock()
			s.wg.Go(func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					s.mu.Lock()
					s.data = append(s.data, buf[:n]...)
					s.mu.Unlock()
					if err != nil {
						c.Close() // as receivers do when the sender closes
						return
					}
				}
			})
		}
	})
	t.Cleanup(s.close)
	return s
}

func (s *sink) addr() string { return s.ln.Addr().String() }

func (s *sink) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *sink) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.data...)
}

func (s *sink) waitLen(t *testing.T, n int) []byte {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if b := s.bytes(); len(b) >= n {
			return b
		}
	}
	t.Fatalf("sink got %d bytes, want %d", len(s.bytes()), n)
	return nil
}

func octetCounted(evs []*event.Event) []byte {
	var b []byte
	for _, ev := range evs {
		b = fmt.Appendf(b, "%d %s", len(ev.Raw), ev.Raw)
	}
	return b
}

func TestTCPFramingByteExact(t *testing.T) {
	evs := events(500)
	evs[7].Raw = append(evs[7].Raw, "\nsecond line"...)
	for _, c := range []struct{ framing, want string }{
		{"octet_counting", string(octetCounted(evs))},
		{"newline", func() string {
			var b strings.Builder
			for _, ev := range evs {
				b.WriteString(strings.ReplaceAll(string(ev.Raw), "\n", " ") + "\n")
			}
			return b.String()
		}()},
	} {
		t.Run(c.framing, func(t *testing.T) {
			s := newSink(t, nil)
			o := mustBuild(t, fmt.Sprintf("targets = [\"tcp://%s\"]\nframing = %q", s.addr(), c.framing))
			if err := o.Write(context.Background(), evs[:200]); err != nil {
				t.Fatal(err)
			}
			if err := o.Write(context.Background(), evs[200:]); err != nil {
				t.Fatal(err)
			}
			if got := s.waitLen(t, len(c.want)); string(got) != c.want {
				t.Fatalf("sink got %d bytes that differ from the %d expected", len(got), len(c.want))
			}
			if s.conns != 1 {
				t.Fatalf("%d connections for two batches", s.conns)
			}
			if c.framing == "newline" && o.lfs.Load() != 1 {
				t.Fatalf("newlines replaced = %d, want 1", o.lfs.Load())
			}
		})
	}
}

func TestFormats(t *testing.T) {
	ev := events(1)[0]
	ev.SD = event.StructuredData{{ID: "a@1", Params: []event.SDParam{{Name: "k", Value: "v"}}}}
	for _, c := range []struct{ format, want string }{
		{"raw", string(ev.Raw)},
		{"rfc5424", "<165>1 2026-12-04T09:05:07.000000Z host app 0 - [a@1 k=\"v\"] message 0"},
		{"rfc3164", "<165>Dec  4 09:05:07 host app[0]: message 0"},
	} {
		t.Run(c.format, func(t *testing.T) {
			s := newSink(t, nil)
			o := mustBuild(t, fmt.Sprintf("targets = [\"tcp://%s\"]\nformat = %q\nframing = \"newline\"", s.addr(), c.format))
			if err := o.Write(context.Background(), []*event.Event{ev}); err != nil {
				t.Fatal(err)
			}
			got := strings.TrimSuffix(string(s.waitLen(t, len(c.want)+1)), "\n")
			if got != c.want {
				t.Fatalf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestRFC3164Encoding(t *testing.T) {
	base := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	for _, c := range []struct {
		name string
		ev   event.Event
		want string
	}{
		{"full", event.Event{Facility: 4, Severity: 2, Time: base.AddDate(0, 0, -10), Host: "web-1", App: "sshd", ProcID: "42", Message: "Accepted key"},
			"<34>Mar  4 15:09:26 web-1 sshd[42]: Accepted key"},
		{"two-digit day, no pid", event.Event{Facility: 1, Severity: 6, Time: base, Host: "h", App: "cron", Message: "m"},
			"<14>Mar 14 15:09:26 h cron: m"},
		{"no app", event.Event{Facility: 1, Severity: 6, Time: base, Host: "h", Message: "bare"},
			"<14>Mar 14 15:09:26 h bare"},
		{"no host", event.Event{Facility: 1, Severity: 6, Time: base, App: "a", Message: "m"},
			"<14>Mar 14 15:09:26 - a: m"},
		{"unknown priority", event.Event{Facility: -1, Severity: 6, Time: base, Host: "h", App: "a", Message: "m"},
			"<13>Mar 14 15:09:26 h a: m"},
		{"tag cut at bad bytes", event.Event{Facility: 1, Severity: 6, Time: base, Host: "h o", App: "my app:x", Message: "m"},
			"<14>Mar 14 15:09:26 h my: m"},
		{"long tag", event.Event{Facility: 1, Severity: 6, Time: base, Host: "h", App: strings.Repeat("x", 40), Message: "m"},
			"<14>Mar 14 15:09:26 h " + strings.Repeat("x", 32) + ": m"},
		{"received when no time", event.Event{Facility: 1, Severity: 6, Received: base, Host: "h", App: "a", Message: "m"},
			"<14>Mar 14 15:09:26 h a: m"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := string(AppendRFC3164(nil, &c.ev)); got != c.want {
				t.Fatalf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	o := mustBuild(t, fmt.Sprintf("targets = [\"udp://%s\"]\nmax_datagram_bytes = 480", pc.LocalAddr()))
	evs := events(20)
	evs[3].Raw = []byte(strings.Repeat("x", 1000))
	if err := o.Write(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i, ev := range evs {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		want := ev.Raw
		if len(want) > 480 {
			want = want[:480]
		}
		if string(buf[:n]) != string(want) {
			t.Fatalf("datagram %d = %q, want %q", i, buf[:n], want)
		}
	}
	if o.truncated.Load() != 1 {
		t.Fatalf("truncated = %d, want 1", o.truncated.Load())
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "good")
	other := testpki.NewCA(t, dir, "other")
	srv := ca.Server(t, "server")
	cli := ca.Client(t, "client")
	cert, err := tls.LoadX509KeyPair(srv.CertFile, srv.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509Pool(t, ca.CertFile)
	s := newSink(t, &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
	evs := events(50)

	good := mustBuild(t, fmt.Sprintf("targets = [\"tls://%s\"]\ntls {\n  ca_file = %q\n  cert_file = %q\n  key_file = %q\n}", s.addr(), ca.CertFile, cli.CertFile, cli.KeyFile))
	if err := good.Write(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	want := octetCounted(evs)
	if got := s.waitLen(t, len(want)); string(got) != string(want) {
		t.Fatal("TLS sink got different bytes")
	}

	wrongCA := mustBuild(t, fmt.Sprintf("targets = [\"tls://%s\"]\ntls {\n  ca_file = %q\n  cert_file = %q\n  key_file = %q\n}", s.addr(), other.CertFile, cli.CertFile, cli.KeyFile))
	if err := wrongCA.Write(context.Background(), evs); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Write trusting the wrong CA = %v; want a certificate error", err)
	}
	noCert := mustBuild(t, fmt.Sprintf("targets = [\"tls://%s\"]\ntls {\n  ca_file = %q\n}", s.addr(), ca.CertFile))
	// Under TLS 1.3 the server's refusal arrives after the client's
	// handshake is done: Write must still report it, not claim delivery.
	if err := noCert.Write(context.Background(), evs); err == nil || !strings.Contains(err.Error(), "refused the connection after the TLS handshake") {
		t.Fatalf("Write without a client certificate = %v; want the refusal", err)
	}
	if got := s.bytes(); len(got) != len(want) {
		t.Fatalf("sink got %d bytes from refused clients", len(got)-len(want))
	}
}

// opensslSink is a TLS syslog receiver in Debian's /usr/bin/python3 (its
// ssl module is OpenSSL), like rsyslog's and most SIEMs' TLS stacks: it
// sends TLS 1.3 session tickets right after the handshake (crypto/tls
// servers send none to clients without a session cache). It reads with
// delay after each read and reports "closed N" (bytes received) when a
// connection ends.
type opensslSink struct {
	port   int
	caFile string
	lines  chan string
}

const opensslSinkPy = `
import ssl, socket, sys, threading, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
delay = float(sys.argv[3])
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(16)
print(ls.getsockname()[1], flush=True)
lock = threading.Lock()
def serve(c):
    n = 0
    try:
        s = ctx.wrap_socket(c, server_side=True)
        while True:
            d = s.recv(65536)
            if not d:
                break
            n += len(d)
            if delay:
                time.sleep(delay)
        s.close()
    except Exception as e:
        with lock:
            print("error", e, flush=True)
    with lock:
        print("closed", n, flush=True)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`

func newOpensslSink(t *testing.T, delay time.Duration) *opensslSink {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("needs Debian's /usr/bin/python3 (make deps installs it)")
	}
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "ca")
	srv := ca.Server(t, "server")
	cmd := exec.Command("/usr/bin/python3", "-c", opensslSinkPy, srv.CertFile, srv.KeyFile, strconv.FormatFloat(delay.Seconds(), 'f', -1, 64))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &opensslSink{caFile: ca.CertFile, lines: make(chan string, 100)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done; _ = cmd.Wait() })
	s.port, err = strconv.Atoi(s.next(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// next returns the sink's next report, waiting up to 30 s.
func (s *opensslSink) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-s.lines:
		if !ok {
			t.Fatal("the python sink ended")
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatal("no report from the python sink")
	}
	return ""
}

func (s *opensslSink) config() string {
	return fmt.Sprintf("targets = [\"tls://127.0.0.1:%d\"]\ntls {\n  ca_file = %q\n}", s.port, s.caFile)
}

// Session tickets the server sends after the handshake are not mistaken
// for a closed connection: one connection carries every batch, and all
// of it arrives.
func TestTLSSessionTicketsKeepConnection(t *testing.T) {
	s := newOpensslSink(t, 0)
	o, err := build(t, s.config())
	if err != nil {
		t.Fatal(err)
	}
	evs := events(30)
	for i, ev := range evs {
		if err := o.Write(context.Background(), []*event.Event{ev}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			time.Sleep(50 * time.Millisecond) // the tickets have arrived by now
		}
	}
	o.Close()
	if got, want := s.next(t), fmt.Sprintf("closed %d", len(octetCounted(evs))); got != want {
		t.Fatalf("receiver: %q, want %q", got, want)
	}
	if c := o.targets[0].connects.Load(); c != 1 {
		t.Fatalf("%d connections for %d batches, want 1", c, len(evs))
	}
}

// Close delivers what the kernel still holds: a slow receiver gets every
// byte of a batch that Write handed over just before Close (a socket
// closed with unread data, such as session tickets, sends a reset instead,
// which discards what was not sent yet).
func TestCloseDeliversPendingData(t *testing.T) {
	s := newOpensslSink(t, 5*time.Millisecond)
	o, err := build(t, s.config())
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 1000)
	var evs []*event.Event
	for i := range 4000 {
		evs = append(evs, &event.Event{Raw: fmt.Appendf(nil, "<13>1 - h a - - - %d %s", i, pad)})
	}
	if err := o.Write(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	o.Close()
	if got, want := s.next(t), fmt.Sprintf("closed %d", len(octetCounted(evs))); got != want {
		t.Fatalf("receiver: %q, want %q", got, want)
	}
}

// Failover: the batch goes to the second target while the first is down,
// and back to the first once it is up and failback_after has passed.
func TestFailoverAndFailback(t *testing.T) {
	primary := newSink(t, nil)
	paddr := primary.addr()
	primary.close()
	secondary := newSink(t, nil)
	o := mustBuild(t, fmt.Sprintf("targets = [\"tcp://%s\", \"tcp://%s\"]\nfailback_after = \"200ms\"", paddr, secondary.addr()))
	evs := events(10)
	if err := o.Write(context.Background(), evs[:5]); err != nil {
		t.Fatal(err)
	}
	if got, want := string(secondary.waitLen(t, len(octetCounted(evs[:5])))), string(octetCounted(evs[:5])); got != want {
		t.Fatalf("secondary got %q", got)
	}
	if o.failovers.Load() != 1 {
		t.Fatalf("failovers = %d", o.failovers.Load())
	}
	back := newSinkAt(t, paddr, nil)
	time.Sleep(250 * time.Millisecond)
	if err := o.Write(context.Background(), evs[5:]); err != nil {
		t.Fatal(err)
	}
	if got, want := string(back.waitLen(t, len(octetCounted(evs[5:])))), string(octetCounted(evs[5:])); got != want {
		t.Fatalf("primary after failback got %q", got)
	}
}

func TestRoundRobin(t *testing.T) {
	a, b := newSink(t, nil), newSink(t, nil)
	o := mustBuild(t, fmt.Sprintf("targets = [\"tcp://%s\", \"tcp://%s\"]\nmode = \"round_robin\"", a.addr(), b.addr()))
	evs := events(4)
	for _, ev := range evs {
		if err := o.Write(context.Background(), []*event.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	wantA := octetCounted([]*event.Event{evs[0], evs[2]})
	wantB := octetCounted([]*event.Event{evs[1], evs[3]})
	if got := a.waitLen(t, len(wantA)); string(got) != string(wantA) {
		t.Fatalf("a got %q", got)
	}
	if got := b.waitLen(t, len(wantB)); string(got) != string(wantB) {
		t.Fatalf("b got %q", got)
	}
}

// A receiver that closes the connection and comes back: Write notices the
// closed connection (or fails) and a retry delivers; with the receiver
// down, Write fails and nothing is claimed delivered.
func TestReconnect(t *testing.T) {
	s := newSink(t, nil)
	addr := s.addr()
	o := mustBuild(t, fmt.Sprintf("targets = [\"tcp://%s\"]\nfailback_after = \"0s\"", addr))
	evs := events(6)
	if err := o.Write(context.Background(), evs[:2]); err != nil {
		t.Fatal(err)
	}
	s.waitLen(t, len(octetCounted(evs[:2])))
	s.close()
	if err := o.Write(context.Background(), evs[2:4]); err == nil {
		t.Fatal("Write succeeded with the receiver gone")
	}
	s2 := newSinkAt(t, addr, nil)
	var err error
	for i := 0; i < 20; i++ {
		if err = o.Write(context.Background(), evs[2:]); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	want := octetCounted(evs[2:])
	if got := s2.waitLen(t, len(want)); string(got) != string(want) {
		t.Fatalf("after reconnect got %q", got)
	}
	if o.targets[0].connects.Load() != 2 {
		t.Fatalf("connects = %d, want 2", o.targets[0].connects.Load())
	}
}

func x509Pool(t *testing.T, file string) *x509CertPool {
	t.Helper()
	return loadPool(t, file)
}

func BenchmarkWriteTCP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, bufio.NewReader(c))
	}()
	o, err := New(&Config{Targets: []string{"tcp://" + ln.Addr().String()}, Mode: "failover", Framing: "octet_counting",
		Format: "raw", ConnectTimeout: "5s", WriteTimeout: "30s", FailbackAfter: "30s", MaxDatagramBytes: 65000}, outputs.Env{Name: "b"})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	evs := events(1000)
	b.SetBytes(int64(len(octetCounted(evs))) / 1000)
	b.ResetTimer()
	for i := 0; i < b.N; i += 1000 {
		if err := o.Write(context.Background(), evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// Two syslog outputs register their metrics side by side.
func TestMetricsOfTwoOutputs(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, name := range []string{"a", "b"} {
		o, err := New(DefaultConfigWith("tcp://127.0.0.1:1"), outputs.Env{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Register(o.(prometheus.Collector)); err != nil {
			t.Fatalf("registering output %s: %v", name, err)
		}
	}
	n, err := testutil.GatherAndCount(reg, "sluice_syslog_out_messages_total")
	if err != nil || n != 2 {
		t.Fatalf("messages_total series = %d, %v; want one per output", n, err)
	}
}

func DefaultConfigWith(target string) *Config {
	c := DefaultConfig()
	c.Targets = []string{target}
	return c
}

// A forced stop (the context cancelled) ends a write blocked on a receiver
// that does not read, long before write_timeout; the connection is not
// reused, since it may end in a partial frame.
func TestCancelEndsBlockedWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c // never read
		}
	}()
	o := mustBuild(t, fmt.Sprintf("targets = [\"tcp://%s\"]\nwrite_timeout = \"10m\"", ln.Addr()))
	pad := strings.Repeat("x", 4000)
	var evs []*event.Event
	for i := range 16000 { // 64 MB: more than the socket buffers hold
		evs = append(evs, &event.Event{Raw: fmt.Appendf(nil, "<13>1 - h a - - - %d %s", i, pad)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- o.Write(ctx, evs) }()
	var peer net.Conn
	select {
	case peer = <-accepted:
		defer peer.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("no connection")
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-res:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Write = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Write still blocked a minute after its context was cancelled (write_timeout is 10m)")
	}
	if o.targets[0].conn != nil {
		t.Fatal("the connection with a partial frame was kept")
	}
}

// close is bounded by closeWait even when the peer reads nothing, so that
// crypto/tls's close_notify (which has a 5 s deadline of its own) blocks:
// a stuck receiver cannot hold up a shutdown or reload for longer.
func TestCloseBoundedWhenPeerDoesNotRead(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "ca")
	srv := ca.Server(t, "server")
	cert, err := tls.LoadX509KeyPair(srv.CertFile, srv.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe() // unbuffered: a write blocks until the peer reads
	defer b.Close()
	s := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{cert}})
	hs := make(chan error, 1)
	go func() { hs <- s.Handshake() }()
	c := tls.Client(a, &tls.Config{RootCAs: x509Pool(t, ca.CertFile), ServerName: "127.0.0.1"})
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-hs; err != nil {
		t.Fatal(err)
	}
	w := watch(c)
	tg := &target{conn: c, watch: w} // the server never reads from now on
	start := time.Now()
	tg.close()
	if took := time.Since(start); took > closeWait+time.Second {
		t.Fatalf("close took %v, want at most closeWait (%v)", took, closeWait)
	}
	if tg.conn != nil {
		t.Fatal("connection kept")
	}
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the watcher goroutine did not end")
	}
}
