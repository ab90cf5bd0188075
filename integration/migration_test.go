//go:build integration

package integration

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/testpki"
)

// frameSink accepts syslog connections (plain or TLS) and collects the
// octet-counted frames they carry.
type frameSink struct {
	ln     net.Listener
	mu     sync.Mutex
	frames []string
}

func newFrameSink(t *testing.T, tlsCfg *tls.Config) *frameSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s := &frameSink{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					var n int
					if _, err := fmt.Fscanf(r, "%d ", &n); err != nil {
						return
					}
					b := make([]byte, n)
					if _, err := io.ReadFull(r, b); err != nil {
						return
					}
					s.mu.Lock()
					s.frames = append(s.frames, string(b))
					s.mu.Unlock()
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *frameSink) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *frameSink) wait(t *testing.T, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s.mu.Lock()
		got := slices.Clone(s.frames)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver got %d frames, want %d: %q", len(got), n, got)
		}
	}
}

// The syslog-ng migration example, end to end: examples/syslog-ng/sluice.hcl
// runs as written (ports, hosts and the CA from the environment, the admin
// address swapped for a free one) with the flags of packaging/sluice.service.
// Messages from util-linux logger (TCP octet-counted, TCP newline, UDP
// RFC 3164) and from a raw TCP client posing as noisy-box are filtered by
// facility, program and host exactly as the syslog-ng.conf beside it does:
// security events reach the TLS SIEM, noisy-box's info is dropped,
// everything else reaches the TCP collector byte-exact and the archive.
func TestSyslogNgMigrationExample(t *testing.T) {
	src, err := os.ReadFile("../examples/syslog-ng/sluice.hcl")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(src), `"127.0.0.1:9514"`, `"%ADMIN%"`, 1)
	if cfg == string(src) {
		t.Fatal("the example's admin address moved; update this test")
	}
	unit, err := os.ReadFile("../packaging/sluice.service")
	if err != nil {
		t.Fatal(err)
	}
	var runFlags []string
	for _, line := range strings.Split(string(unit), "\n") {
		if rest, ok := strings.CutPrefix(line, "ExecStart=/usr/local/bin/sluice run -config /etc/sluice/sluice.hcl"); ok {
			runFlags = strings.Fields(rest)
		}
	}
	for _, want := range []string{"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "User=sluice"} {
		if !strings.Contains(string(unit), "\n"+want+"\n") {
			t.Errorf("packaging/sluice.service lacks %q", want)
		}
	}
	if runFlags == nil {
		t.Fatal("packaging/sluice.service has no ExecStart running sluice with /etc/sluice/sluice.hcl")
	}

	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "siem")
	srv := ca.Server(t, "siem")
	cert, err := tls.LoadX509KeyPair(srv.CertFile, srv.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	siem := newFrameSink(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	central := newFrameSink(t, nil)
	port, tlsPort := freePort(t), freePort(t)
	clients := testpki.NewCA(t, dir, "clients")
	sluiceCert := ca.Server(t, "sluice")
	client := clients.Client(t, "web-7")
	env := []string{
		fmt.Sprintf("SYSLOG_PORT=%d", port),
		fmt.Sprintf("TLS_PORT=%d", tlsPort), "TLS_CERT=" + sluiceCert.CertFile, "TLS_KEY=" + sluiceCert.KeyFile,
		"TLS_CLIENT_CA=" + clients.CertFile,
		"SIEM_HOST=127.0.0.1", fmt.Sprintf("SIEM_PORT=%d", siem.port()), "SIEM_CA=" + ca.CertFile,
		"CENTRAL_HOST=127.0.0.1", fmt.Sprintf("CENTRAL_PORT=%d", central.port()),
	}
	d := startDaemonWith(t, dir, cfg, env, runFlags...)

	logger(t, port, "--tcp", "--octet-count", "--rfc5424", "-t", "sshd", "-p", "auth.info", "accepted publickey")
	logger(t, port, "--tcp", "--rfc5424", "-t", "app", "-p", "user.notice", "plain app event")
	logger(t, port, "-d", "--rfc3164", "-t", "sudo", "-p", "user.warning", "sudo session opened")
	raw := []string{
		"<14>1 2026-12-04T10:00:00Z noisy-box app - - - noise at info",
		"<86>1 2026-12-04T10:00:01Z noisy-box sudo - - - noisy sudo at info",
		"<11>1 2026-12-04T10:00:02Z noisy-box app - - - noisy error",
	}
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range raw {
		fmt.Fprintf(c, "%d %s", len(m), m)
	}
	c.Close()

	// Over TLS with a client certificate (mutual TLS); a client without
	// one is refused and nothing it sends arrives.
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	kp, err := tls.LoadX509KeyPair(client.CertFile, client.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tlsMsg := "<38>1 2026-12-04T10:00:03Z web-7 sshd 77 - - login over tls"
	tc, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{kp}})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(tc, "%d %s", len(tlsMsg), tlsMsg)
	tc.Close()
	anon, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err == nil {
		fmt.Fprintf(anon, "%d %s", len("<38>1 - intruder - - - - must not arrive"), "<38>1 - intruder - - - - must not arrive")
		_ = anon.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = anon.Read(make([]byte, 1))
		anon.Close()
	}
	if err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("a TLS client without a certificate was not refused: %v", err)
	}

	siemGot := siem.wait(t, 4)
	centralGot := central.wait(t, 5)
	d.waitMetric(`sluice_router_dropped_total{reason="route"}`, 1)
	time.Sleep(200 * time.Millisecond) // anything misrouted would arrive by now
	d.stop()

	expect := func(name string, got []string, wantSuffixes ...string) {
		t.Helper()
		if len(got) != len(wantSuffixes) {
			t.Fatalf("%s got %d messages, want %d: %q", name, len(got), len(wantSuffixes), got)
		}
		for _, w := range wantSuffixes {
			n := 0
			for _, g := range got {
				if strings.HasSuffix(g, w) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%s: %q arrived %d times in %q", name, w, n, got)
			}
		}
	}
	expect("siem", siemGot, "accepted publickey", "sudo session opened", "noisy sudo at info", "login over tls")
	for _, g := range siemGot {
		if !strings.HasPrefix(g, "<") || !strings.Contains(g[:6], ">1 ") {
			t.Errorf("siem message %q is not RFC 5424", g)
		}
	}
	expect("central", centralGot, "accepted publickey", "plain app event", "sudo session opened", "noisy error", "login over tls")
	for _, m := range []string{raw[2], tlsMsg} {
		if !slices.Contains(centralGot, m) {
			t.Errorf("central did not get %q byte-exact: %q", m, centralGot)
		}
	}
	archived := readArchive(t, filepath.Join(dir, "archive/*/*/*/*.log.gz"))
	slices.Sort(archived)
	slices.Sort(centralGot)
	if !slices.Equal(archived, centralGot) {
		t.Fatalf("archive and collector differ:\narchive %q\ncentral %q", archived, centralGot)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "archive/2026/12/04/noisy-box.log.gz")); len(files) != 1 {
		t.Errorf("no per-host archive file for noisy-box")
	}
}
