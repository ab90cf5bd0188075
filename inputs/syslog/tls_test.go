package syslog

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/internal/testpki"
	"github.com/sluicelog/sluice/internal/tlsconf"
)

// testPKI is a CA (testpki), a server certificate for 127.0.0.1, a client
// certificate from the same CA and one from another CA, all written to
// files in a temporary directory.
type testPKI struct {
	dir                   string
	ca                    *testpki.CA
	caFile                string
	serverCert, serverKey string // files
	clientCert, clientKey string // files
	client, wrongClient   tls.Certificate
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "sluice-test")
	p := &testPKI{dir: dir, ca: ca, caFile: ca.CertFile}
	srv := ca.Server(t, "sluice-test-server")
	p.serverCert, p.serverKey = srv.CertFile, srv.KeyFile
	cl := ca.Client(t, "good-client")
	p.clientCert, p.clientKey = cl.CertFile, cl.KeyFile
	var err error
	if p.client, err = tls.LoadX509KeyPair(cl.CertFile, cl.KeyFile); err != nil {
		t.Fatal(err)
	}
	wrong := testpki.NewCA(t, dir, "some-other").Client(t, "wrong-client")
	if p.wrongClient, err = tls.LoadX509KeyPair(wrong.CertFile, wrong.KeyFile); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *testPKI) write(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// server returns a tls block serving the test server certificate.
func (p *testPKI) server() *tlsconf.Server {
	return &tlsconf.Server{CertFile: p.serverCert, KeyFile: p.serverKey}
}

// clientConfig returns a client config trusting the test CA, presenting
// cert (if not nil), with TLS versions up to maxVersion (0: the default).
func (p *testPKI) clientConfig(cert *tls.Certificate, maxVersion uint16) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	cfg := &tls.Config{RootCAs: pool, MaxVersion: maxVersion}
	if cert != nil {
		// Sent even when its issuer is not among the CAs the server
		// names (crypto/tls would then send no certificate at all).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return cfg
}

// tlsDial connects to addr and completes the client side of a handshake
// within 5 s. The connection is closed when the test ends.
func tlsDial(t testing.TB, addr string, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	c := tls.Client(raw, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// mustTLSDial is tlsDial failing the test on a handshake error.
func mustTLSDial(t testing.TB, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	c, err := tlsDial(t, addr, cfg)
	if err != nil {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	return c
}

// expectRefused checks that the server refuses a client with cfg: the
// handshake fails or, with TLS 1.3 where the client finishes its side
// before the server has checked the client's certificate, the server's
// alert ends the connection on the first read. A message written meanwhile
// must not arrive (the caller checks the events). The refusal must be
// counted as a tls_handshake drop. It returns the client's error.
func expectRefused(t *testing.T, h *harness, addr string, cfg *tls.Config) error {
	t.Helper()
	before := dropped(h, dropTLSHandshake)
	c, err := tlsDial(t, addr, cfg)
	if err == nil {
		fmt.Fprintf(c, "<13>Oct 11 22:14:15 host app: must not arrive\n")
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var buf [16]byte
		_, err = c.Read(buf[:])
		var ne net.Error
		switch {
		case err == nil:
			t.Fatal("the server sent data")
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatal("the connection was not refused")
		}
	}
	eventually(t, "the refusal counted", func() bool { return dropped(h, dropTLSHandshake) == before+1 })
	return err
}

// send writes s on c and fails the test on error.
func send(t testing.TB, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func octet(msg string) string { return fmt.Sprintf("%d %s", len(msg), msg) }

func tlsConfig(p *testPKI, listen ...string) *Config {
	cfg := testConfig(listen...)
	cfg.TLS = p.server()
	return cfg
}

func TestTLSDelivery(t *testing.T) {
	p := newTestPKI(t)
	h := start(t, tlsConfig(p, "tls4://127.0.0.1:0", "tcp://127.0.0.1:0", "tls://127.0.0.1:0"))
	addrs := h.in.Addrs()
	tlsAddr, tcpAddr, tls2Addr := addrs[0].String(), addrs[1].String(), addrs[2].String()

	// A client that connects and says nothing holds a handshake open; the
	// accept loop must not wait for it.
	stalled := dial(t, tlsAddr)
	eventually(t, "stalled connection admitted", func() bool { return testutil.ToFloat64(h.m.Connections) == 1 })

	c := mustTLSDial(t, tlsAddr, p.clientConfig(nil, 0))
	if st := c.ConnectionState(); st.Version != tls.VersionTLS13 || st.PeerCertificates[0].Subject.CommonName != "sluice-test-server" {
		t.Errorf("version %x, server certificate %q", st.Version, st.PeerCertificates[0].Subject)
	}
	m5424 := `<165>1 2003-10-11T22:14:15.003Z host1 app1 12 ID1 [a@1 k="v"] octet framed over TLS`
	big := "<14>1 2026-11-22T10:00:00Z host5 app5 - - - " + strings.Repeat("0123456789", 4000) // several TLS records
	want := []string{
		m5424,
		"<13>Oct 11 22:14:15 host2 app2[7]: second octet frame",
		"<13>Oct 11 22:14:15 host3 app3: newline framed",
		"<13>Oct 11 22:14:15 host4 app4: crlf framed",
		big,
		"<13>Oct 11 22:14:15 host6 app6: unterminated",
	}
	stream := octet(want[0]) + octet(want[1]) + want[2] + "\n" + want[3] + "\r\n" + octet(want[4]) + want[5]
	// Written in small pieces, so frames straddle reads and TLS records.
	for i := 0; i < len(stream); i += 7000 {
		send(t, c, stream[i:min(i+7000, len(stream))])
	}
	if err := c.CloseWrite(); err != nil { // close_notify
		t.Fatal(err)
	}
	waitClosed(t, c)
	evs := h.rec.wait(t, len(want))
	if len(evs) != len(want) {
		t.Fatalf("got %d events, want %d", len(evs), len(want))
	}
	for i, w := range want {
		ev := evs[i]
		if string(ev.Raw) != w {
			t.Errorf("event %d: raw %.80q…, want %.80q…", i, ev.Raw, w)
		}
		if ev.Origin != c.LocalAddr().String() || ev.Input != "test" || ev.Stream != "syslog" {
			t.Errorf("event %d: origin=%q input=%q stream=%q", i, ev.Origin, ev.Input, ev.Stream)
		}
	}
	if ev := evs[0]; ev.Host != "host1" || ev.App != "app1" || ev.Message != "octet framed over TLS" || sdGet(ev.SD, "a@1", "k") != "v" {
		t.Errorf("event 0 parsed as %+v", ev)
	}
	if evs[3].Message != "crlf framed" || evs[5].Message != "unterminated" {
		t.Errorf("messages %q %q", evs[3].Message, evs[5].Message)
	}

	// TLS 1.2 is accepted by default, on the second tls listener; plain
	// TCP still works next to TLS.
	c12 := mustTLSDial(t, tls2Addr, p.clientConfig(nil, tls.VersionTLS12))
	send(t, c12, "<13>Oct 11 22:14:15 host app: over TLS 1.2\n")
	ct := dial(t, tcpAddr)
	send(t, ct, "<13>Oct 11 22:14:15 host app: over TCP\n")
	evs = h.rec.wait(t, len(want)+2)
	got := map[string]bool{evs[len(want)].Message: true, evs[len(want)+1].Message: true}
	if !got["over TLS 1.2"] || !got["over TCP"] {
		t.Errorf("got %v", got)
	}
	if c12.ConnectionState().Version != tls.VersionTLS12 {
		t.Errorf("version %x", c12.ConnectionState().Version)
	}
	if n := dropped(h, dropTLSHandshake); n != 0 {
		t.Errorf("tls_handshake drops = %v", n)
	}
	if n := testutil.ToFloat64(h.m.ParseFailures); n != 0 {
		t.Errorf("ParseFailures = %v", n)
	}
	_ = stalled.Close()
	_ = c12.Close()
	_ = ct.Close()
	eventually(t, "connections gauge back to 0", func() bool { return testutil.ToFloat64(h.m.Connections) == 0 })
	if n := dropped(h, dropTLSHandshake); n != 0 {
		t.Errorf("a connection closed before its handshake was counted as a drop: %v", n)
	}
	if !strings.Contains(h.logs.String(), "connection closed during the TLS handshake") {
		t.Errorf("the silent client was not logged:\n%s", h.logs)
	}
	if strings.Contains(h.logs.String(), "client_subject") {
		t.Errorf("a client subject was logged without a client certificate:\n%s", h.logs)
	}
}

// noEvent fails if a refused client's message arrived.
func noEvent(t *testing.T, h *harness) {
	t.Helper()
	for _, ev := range h.rec.events() {
		if strings.Contains(ev.Message, "must not arrive") {
			t.Errorf("a refused client's message arrived: %q", ev.Raw)
		}
	}
}

func TestTLSMutual(t *testing.T) {
	p := newTestPKI(t)
	cfg := tlsConfig(p, "tls://127.0.0.1:0")
	cfg.TLS.ClientCAFile = p.caFile // client_auth defaults to "require"
	h := start(t, cfg)
	addr := h.addr(t, "tcp")
	versions := []struct {
		name string
		max  uint16
	}{{"TLS1.2", tls.VersionTLS12}, {"TLS1.3", tls.VersionTLS13}}
	delivered := 0
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			if err := expectRefused(t, h, addr, p.clientConfig(nil, v.max)); err == nil {
				t.Error("no client error")
			}
			if err := expectRefused(t, h, addr, p.clientConfig(&p.wrongClient, v.max)); err == nil {
				t.Error("no client error")
			}
			c := mustTLSDial(t, addr, p.clientConfig(&p.client, v.max))
			send(t, c, octet("<13>Oct 11 22:14:15 host app: with a good certificate"))
			delivered++
			evs := h.rec.wait(t, delivered)
			if ev := evs[delivered-1]; ev.Message != "with a good certificate" || ev.Origin != c.LocalAddr().String() {
				t.Errorf("event %+v", ev)
			}
			_ = c.Close()
		})
	}
	noEvent(t, h)
	if n := dropped(h, dropTLSHandshake); n != 4 {
		t.Errorf("tls_handshake drops = %v, want 4", n)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "TLS handshake failed") || !strings.Contains(logs, "peer=127.0.0.1:") {
		t.Errorf("handshake failure not logged with the peer:\n%s", logs)
	}
	if !strings.Contains(logs, `client_subject="CN=good-client"`) {
		t.Errorf("the verified client's subject not logged at debug level:\n%s", logs)
	}
}

func TestTLSClientAuthRequest(t *testing.T) {
	p := newTestPKI(t)
	cfg := tlsConfig(p, "tls://127.0.0.1:0")
	cfg.TLS.ClientCAFile = p.caFile
	cfg.TLS.ClientAuth = "request"
	h := start(t, cfg)
	addr := h.addr(t, "tcp")

	anon := mustTLSDial(t, addr, p.clientConfig(nil, 0))
	send(t, anon, "<13>Oct 11 22:14:15 host app: no certificate\n")
	h.rec.wait(t, 1)
	good := mustTLSDial(t, addr, p.clientConfig(&p.client, 0))
	send(t, good, "<13>Oct 11 22:14:15 host app: good certificate\n")
	evs := h.rec.wait(t, 2)
	if evs[0].Message != "no certificate" || evs[1].Message != "good certificate" {
		t.Errorf("messages %q %q", evs[0].Message, evs[1].Message)
	}
	// A certificate that is given is verified.
	expectRefused(t, h, addr, p.clientConfig(&p.wrongClient, 0))
	noEvent(t, h)
	if n := dropped(h, dropTLSHandshake); n != 1 {
		t.Errorf("tls_handshake drops = %v, want 1", n)
	}
}

func TestTLSMinVersion(t *testing.T) {
	p := newTestPKI(t)
	cfg := tlsConfig(p, "tls://127.0.0.1:0")
	cfg.TLS.MinVersion = "1.3"
	h := start(t, cfg)
	addr := h.addr(t, "tcp")
	if err := expectRefused(t, h, addr, p.clientConfig(nil, tls.VersionTLS12)); err == nil {
		t.Error("a TLS 1.2 client completed its handshake")
	}
	c := mustTLSDial(t, addr, p.clientConfig(nil, 0))
	if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("version %x", v)
	}
	send(t, c, "<13>Oct 11 22:14:15 host app: TLS 1.3\n")
	if evs := h.rec.wait(t, 1); evs[0].Message != "TLS 1.3" || len(evs) != 1 {
		t.Errorf("events %d, first %q", len(evs), evs[0].Message)
	}
}

func TestTLSPlaintextClient(t *testing.T) {
	p := newTestPKI(t)
	h := start(t, tlsConfig(p, "tls://127.0.0.1:0"))
	addr := h.addr(t, "tcp")

	// Plain-text syslog, newline and octet framed, on the TLS port.
	for i, msg := range []string{"<13>Oct 11 22:14:15 host app: must not arrive\n", octet("<13>Oct 11 22:14:15 host app: must not arrive")} {
		c := dial(t, addr)
		send(t, c, msg)
		waitClosed(t, c)
		eventually(t, "the refusal counted", func() bool { return dropped(h, dropTLSHandshake) == float64(i+1) })
		if i == 0 && !strings.Contains(h.logs.String(), "peer="+c.LocalAddr().String()) {
			t.Errorf("peer %s not logged:\n%s", c.LocalAddr(), h.logs)
		}
	}
	if !strings.Contains(h.logs.String(), "does not speak TLS") {
		t.Errorf("no hint in the log:\n%s", h.logs)
	}
	// Logged once as a warning (rate-limited), then at debug level.
	if n := strings.Count(h.logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, h.logs)
	}
	// The input is still up.
	c := mustTLSDial(t, addr, p.clientConfig(nil, 0))
	send(t, c, "<13>Oct 11 22:14:15 host app: still up\n")
	if evs := h.rec.wait(t, 1); evs[0].Message != "still up" {
		t.Errorf("message %q", evs[0].Message)
	}
	noEvent(t, h)
	eventually(t, "refused connections closed", func() bool { return testutil.ToFloat64(h.m.Connections) == 1 })
}

func TestTLSHandshakeTimeout(t *testing.T) {
	p := newTestPKI(t)
	cfg := tlsConfig(p, "tls://127.0.0.1:0")
	cfg.IdleTimeout = "300ms" // bounds the handshake too
	h := start(t, cfg)
	c := dial(t, h.addr(t, "tcp"))
	send(t, c, "\x16\x03") // the start of a record header, then nothing
	t0 := time.Now()
	waitClosed(t, c)
	if d := time.Since(t0); d < 200*time.Millisecond {
		t.Errorf("closed after %v, before the handshake timeout", d)
	}
	eventually(t, "the timeout counted", func() bool { return dropped(h, dropTLSHandshake) == 1 })
	if !strings.Contains(h.logs.String(), "TLS handshake timed out") {
		t.Errorf("timeout not logged:\n%s", h.logs)
	}
	eventually(t, "connections gauge back to 0", func() bool { return testutil.ToFloat64(h.m.Connections) == 0 })

	// After the handshake, idle_timeout applies as on TCP (not a drop).
	tc := mustTLSDial(t, h.addr(t, "tcp"), p.clientConfig(nil, 0))
	send(t, tc, "<13>Oct 11 22:14:15 host app: then silence\n")
	h.rec.wait(t, 1)
	waitClosed(t, tc)
	if !strings.Contains(h.logs.String(), "idle connection closed") {
		t.Errorf("idle close not logged:\n%s", h.logs)
	}
	if n := dropped(h, dropTLSHandshake); n != 1 {
		t.Errorf("tls_handshake drops = %v, want 1", n)
	}
}

func TestTLSShutdown(t *testing.T) {
	p := newTestPKI(t)
	before := runtime.NumGoroutine()
	cfg := tlsConfig(p, "tls://127.0.0.1:0")
	cfg.MaxConnections = 4
	h := start(t, cfg)
	addr := h.addr(t, "tcp")
	// Connections in their handshake count against max_connections.
	var conns []net.Conn
	for range 3 {
		conns = append(conns, dial(t, addr))
	}
	c := mustTLSDial(t, addr, p.clientConfig(nil, 0))
	// One write, so one TLS record: once the complete line has arrived, the
	// partial one is buffered in the input.
	send(t, c, "<13>Oct 11 22:14:15 host app: complete\n<13>Oct 11 22:14:15 host app: partial, never ended")
	h.rec.wait(t, 1)
	conns = append(conns, c)
	eventually(t, "4 connections", func() bool { return testutil.ToFloat64(h.m.Connections) == 4 })
	waitClosed(t, dial(t, addr))
	if n := dropped(h, "max_connections"); n != 1 {
		t.Errorf("max_connections drops = %v", n)
	}
	h.stop()
	for _, c := range conns {
		waitClosed(t, c)
		_ = c.Close()
	}
	eventually(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	if n := dropped(h, dropTLSHandshake); n != 0 {
		t.Errorf("handshakes interrupted by shutdown counted as drops: %v", n)
	}
	// The partial frame read before shutdown is delivered.
	if evs := h.rec.events(); len(evs) != 2 || evs[1].Message != "partial, never ended" {
		t.Errorf("events after shutdown: %d\n%s", len(evs), h.logs)
	}
}

// replaceFile writes data to path by renaming a temporary file over it, as
// certificate renewal tools do.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestTLSCertificateReload(t *testing.T) {
	p := newTestPKI(t)
	h := start(t, tlsConfig(p, "tls://127.0.0.1:0"))
	addr := h.addr(t, "tcp")
	servedCN := func() string {
		c := mustTLSDial(t, addr, p.clientConfig(nil, 0))
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := servedCN(); cn != "sluice-test-server" {
		t.Fatalf("served %q", cn)
	}
	old := mustTLSDial(t, addr, p.clientConfig(nil, 0))

	// Renewal: the files are replaced; a new handshake sees the new
	// certificate once the files are checked again (at most once a second).
	renewed := p.ca.Server(t, "sluice-test-server-renewed")
	cert, key := readFile(t, renewed.CertFile), readFile(t, renewed.KeyFile)
	replaceFile(t, p.serverKey, key)
	replaceFile(t, p.serverCert, cert)
	deadline := time.Now().Add(10 * time.Second)
	for servedCN() != "sluice-test-server-renewed" {
		if time.Now().After(deadline) {
			t.Fatalf("the renewed certificate is not served:\n%s", h.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A connection made before the renewal carries on.
	send(t, old, "<13>Oct 11 22:14:15 host app: old connection\n")
	if evs := h.rec.wait(t, 1); evs[0].Message != "old connection" {
		t.Errorf("message %q", evs[0].Message)
	}

	// A broken renewal is logged and the last good certificate kept.
	replaceFile(t, p.serverCert, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(h.logs.String(), "TLS file reload failed") {
		if time.Now().After(deadline) {
			t.Fatalf("the failed reload is not logged:\n%s", h.logs)
		}
		if cn := servedCN(); cn != "sluice-test-server-renewed" {
			t.Fatalf("served %q after a broken renewal", cn)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if cn := servedCN(); cn != "sluice-test-server-renewed" {
		t.Errorf("served %q after a broken renewal", cn)
	}
	if !strings.Contains(h.logs.String(), "level=ERROR") || !strings.Contains(h.logs.String(), p.serverCert) {
		t.Errorf("reload error not logged at ERROR level with the file name:\n%s", h.logs)
	}
	if n := dropped(h, dropTLSHandshake); n != 0 {
		t.Errorf("tls_handshake drops = %v", n)
	}
}

func TestTLSConfig(t *testing.T) {
	p := newTestPKI(t)
	cfg := tlsConfig(p, "tls://127.0.0.1:6514", "tls4://0.0.0.0:0", "tls6://[::1]:0", "tcp://127.0.0.1:514")
	in, err := New(cfg, inputs.Env{Name: "x", Metrics: inputs.NewDiscardMetrics()})
	if err != nil {
		t.Fatal(err)
	}
	s := in.(*Input).s
	var got []string
	for _, la := range s.listen {
		got = append(got, fmt.Sprintf("%s %s %v", la.network, la.address, la.tls))
	}
	want := []string{"tcp 127.0.0.1:6514 true", "tcp4 0.0.0.0:0 true", "tcp6 [::1]:0 true", "tcp 127.0.0.1:514 false"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("listen %v, want %v", got, want)
	}
	if s.tls == nil || s.tls.MinVersion != tls.VersionTLS12 || s.tls.ClientAuth != tls.NoClientCert || s.tls.GetCertificate == nil {
		t.Errorf("tls config %+v", s.tls)
	}
	for _, tc := range []struct {
		idle string
		want time.Duration
	}{{"5m", 10 * time.Second}, {"0", 10 * time.Second}, {"2s", 2 * time.Second}} {
		cfg.IdleTimeout = tc.idle
		in, err := New(cfg, inputs.Env{})
		if err != nil {
			t.Fatal(err)
		}
		if d := in.(*Input).s.handshake; d != tc.want {
			t.Errorf("idle_timeout %s: handshake timeout %v, want %v", tc.idle, d, tc.want)
		}
	}
}

// The tls block decodes from HCL as the router decodes input blocks.
func TestTLSConfigHCL(t *testing.T) {
	p := newTestPKI(t)
	src := fmt.Sprintf(`
listen = ["tls://127.0.0.1:6514"]
tls {
  cert_file      = %q
  key_file       = %q
  client_ca_file = %q
  client_auth    = "request"
  min_version    = "1.3"
}
`, p.serverCert, p.serverKey, p.caFile)
	f, diags := hclsyntax.ParseConfig([]byte(src), "test.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	cfg := DefaultConfig()
	if diags := gohcl.DecodeBody(f.Body, nil, cfg); diags.HasErrors() {
		t.Fatal(diags)
	}
	want := tlsconf.Server{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: p.caFile, ClientAuth: "request", MinVersion: "1.3"}
	if cfg.TLS == nil || *cfg.TLS != want {
		t.Fatalf("decoded %+v", cfg.TLS)
	}
	in, err := New(cfg, inputs.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if tc := in.(*Input).s.tls; tc.MinVersion != tls.VersionTLS13 || tc.ClientAuth != tls.VerifyClientCertIfGiven || tc.ClientCAs == nil {
		t.Errorf("tls config %+v", tc)
	}

	// cert_file and key_file are required attributes of the block.
	f, _ = hclsyntax.ParseConfig([]byte("listen = [\"tls://:6514\"]\ntls {\n  key_file = \"k\"\n}\n"), "test.hcl", hcl.InitialPos)
	diags = gohcl.DecodeBody(f.Body, nil, DefaultConfig())
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "cert_file") {
		t.Errorf("missing cert_file: %v", diags)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	p := newTestPKI(t)
	bad := p.write(t, "bad.pem", []byte("this is not PEM\n"))
	missing := filepath.Join(p.dir, "missing.pem")
	type fe struct{ field, text string }
	cases := []struct {
		name   string
		listen []string
		tls    *tlsconf.Server // nil: no block
		want   []fe
	}{
		{"tls address without a tls block", []string{"tls://127.0.0.1:6514"}, nil,
			[]fe{{"listen", `address "tls://127.0.0.1:6514" needs a tls block`}}},
		{"tls4 and tls6 without a tls block", []string{"tcp://:514", "tls4://:6514", "tls6://[::1]:6514"}, nil,
			[]fe{{"listen", `"tls4://:6514" needs a tls block`}, {"listen", `"tls6://[::1]:6514" needs a tls block`}}},
		{"tls block without a tls address", []string{"tcp://127.0.0.1:514", "udp://127.0.0.1:514"}, p.server(),
			[]fe{{"tls", "needs at least one tls:// listen address"}}},
		{"unknown scheme", []string{"tlsv1://127.0.0.1:6514"}, nil,
			[]fe{{"listen", `unknown scheme "tlsv1" (want udp, tcp or tls)`}}},
		{"tcp and tls on one port", []string{"tcp://127.0.0.1:6514", "tls://127.0.0.1:6514"}, p.server(),
			[]fe{{"listen", `address "tls://127.0.0.1:6514" uses the same TCP port as "tcp://127.0.0.1:6514"`}}},
		{"tls address listed twice", []string{"tls://127.0.0.1:6514", "tls://127.0.0.1:6514"}, p.server(),
			[]fe{{"listen", "listed twice"}}},
		{"no cert_file", []string{"tls://:6514"}, &tlsconf.Server{KeyFile: p.serverKey},
			[]fe{{"tls.cert_file", "needs cert_file and key_file"}}},
		{"no key_file", []string{"tls://:6514"}, &tlsconf.Server{CertFile: p.serverCert},
			[]fe{{"tls.key_file", "needs cert_file and key_file"}}},
		{"missing cert file", []string{"tls://:6514"}, &tlsconf.Server{CertFile: missing, KeyFile: p.serverKey},
			[]fe{{"tls.cert_file", "no such file"}}},
		{"cert file not PEM", []string{"tls://:6514"}, &tlsconf.Server{CertFile: bad, KeyFile: p.serverKey},
			[]fe{{"tls.cert_file", "failed to find any PEM data in certificate input"}}},
		{"key file not PEM", []string{"tls://:6514"}, &tlsconf.Server{CertFile: p.serverCert, KeyFile: bad},
			[]fe{{"tls.cert_file", "failed to find any PEM data in key input"}}},
		{"key of another certificate", []string{"tls://:6514"}, &tlsconf.Server{CertFile: p.serverCert, KeyFile: p.clientKey},
			[]fe{{"tls.cert_file", "private key does not match public key"}}},
		{"missing client CA file", []string{"tls://:6514"}, &tlsconf.Server{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: missing},
			[]fe{{"tls.client_ca_file", "cannot read CA file"}}},
		{"client CA file not PEM", []string{"tls://:6514"}, &tlsconf.Server{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: bad},
			[]fe{{"tls.client_ca_file", "no PEM certificate found"}}},
		{"require without a client CA", []string{"tls://:6514"}, &tlsconf.Server{CertFile: p.serverCert, KeyFile: p.serverKey, ClientAuth: "require"},
			[]fe{{"tls.client_ca_file", `client_auth = "require" needs client_ca_file`}}},
		{"request without a client CA", []string{"tls://:6514"}, &tlsconf.Server{CertFile: p.serverCert, KeyFile: p.serverKey, ClientAuth: "request"},
			[]fe{{"tls.client_ca_file", `client_auth = "request" needs client_ca_file`}}},
		{"client CA with client_auth none", []string{"tls://:6514"}, &tlsconf.Server{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: p.caFile, ClientAuth: "none"},
			[]fe{{"tls.client_auth", "would ignore it"}}},
		{"unknown client_auth", []string{"tls://:6514"}, &tlsconf.Server{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: p.caFile, ClientAuth: "optional"},
			[]fe{{"tls.client_auth", `unknown client_auth "optional"`}}},
		{"obsolete min_version", []string{"tls://:6514"}, &tlsconf.Server{CertFile: p.serverCert, KeyFile: p.serverKey, MinVersion: "1.1"},
			[]fe{{"tls.min_version", "obsolete"}}},
		{"unknown min_version", []string{"tls://:6514"}, &tlsconf.Server{CertFile: p.serverCert, KeyFile: p.serverKey, MinVersion: "TLSv1.3"},
			[]fe{{"tls.min_version", `unknown TLS version "TLSv1.3"`}}},
		{"everything at once", []string{"tcp://:514"}, &tlsconf.Server{CertFile: missing, KeyFile: p.serverKey, ClientAuth: "require", MinVersion: "1.0"},
			[]fe{{"tls", "needs at least one tls:// listen address"}, {"tls.min_version", "obsolete"},
				{"tls.cert_file", "no such file"}, {"tls.client_ca_file", "needs client_ca_file"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(tc.listen...)
			cfg.TLS = tc.tls
			_, err := New(cfg, inputs.Env{})
			if err == nil {
				t.Fatal("no error")
			}
			var got []fe
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var f *conf.FieldError
				if !errors.As(e, &f) {
					t.Fatalf("not a FieldError: %v", e)
				}
				got = append(got, fe{f.Field, f.Err.Error()})
			}
			if len(got) != len(tc.want) {
				t.Fatalf("errors:\n%v\nwant %d: %v", err, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if got[i].field != w.field || !strings.Contains(got[i].text, w.text) {
					t.Errorf("error %d: %s: %s\nwant %s: …%s…", i, got[i].field, got[i].text, w.field, w.text)
				}
			}
		})
	}
}

// OpenSSL's s_client as an independent TLS client (mutual TLS).
func TestTLSOpenSSLClient(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	p := newTestPKI(t)
	cfg := tlsConfig(p, "tls://127.0.0.1:0")
	cfg.TLS.ClientCAFile = p.caFile
	h := start(t, cfg)
	addr := h.addr(t, "tcp")
	sClient := func(t *testing.T, stdin string, extra ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		args := append([]string{"s_client", "-connect", addr, "-CAfile", p.caFile,
			"-verify_return_error", "-verify_ip", "127.0.0.1", "-quiet", "-no_ign_eof"}, extra...)
		cmd := exec.CommandContext(ctx, openssl, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	m5424 := `<165>1 2026-11-22T10:00:00.000Z host1 app1 - ID1 [a@1 k="v"] from openssl, octet counted`
	m3164 := "<13>Oct 11 22:14:15 host2 app2: from openssl, newline"
	t.Run("client certificate", func(t *testing.T) {
		out, err := sClient(t, octet(m5424)+m3164+"\n", "-cert", p.clientCert, "-key", p.clientKey)
		if err != nil {
			t.Fatalf("s_client: %v\n%s", err, out)
		}
		evs := h.rec.wait(t, 2)
		if len(evs) != 2 || string(evs[0].Raw) != m5424 || string(evs[1].Raw) != m3164 {
			t.Errorf("events %d: %q", len(evs), evs[0].Raw)
		}
		if sdGet(evs[0].SD, "a@1", "k") != "v" || evs[1].App != "app2" {
			t.Errorf("parsed %+v %+v", evs[0], evs[1])
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		before := dropped(h, dropTLSHandshake)
		out, _ := sClient(t, "<13>Oct 11 22:14:15 host app: must not arrive\n")
		eventually(t, "the refusal counted", func() bool { return dropped(h, dropTLSHandshake) == before+1 })
		t.Logf("s_client: %s", bytes.TrimSpace([]byte(out)))
		noEvent(t, h)
	})
}

// readFile returns the contents of path, failing the test if it cannot.
func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The input is a checked prometheus.Collector with or without TLS, so the
// router can unregister it when a reload replaces it; only a TLS input
// exports the certificate's expiry.
func TestInputExpiryMetric(t *testing.T) {
	p := newTestPKI(t)
	for _, tc := range []struct {
		name   string
		tls    *tlsconf.Server
		series int
	}{{"tls", p.server(), 1}, {"plain", nil, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen = []string{"tcp://127.0.0.1:0"}
			if tc.tls != nil {
				cfg.Listen = []string{"tls://127.0.0.1:0"}
				cfg.TLS = tc.tls
			}
			in, err := New(cfg, inputs.Env{Name: "in-" + tc.name})
			if err != nil {
				t.Fatal(err)
			}
			c := in.(prometheus.Collector)
			reg := prometheus.NewRegistry()
			if err := reg.Register(c); err != nil {
				t.Fatal(err)
			}
			if n := testutil.CollectAndCount(c, "sluice_tls_certificate_expiry_timestamp_seconds"); n != tc.series {
				t.Fatalf("%d expiry series, want %d", n, tc.series)
			}
			if !reg.Unregister(c) {
				t.Fatal("the input could not be unregistered")
			}
		})
	}
}
