//go:build integration

package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/testpki"
)

// needGTLS skips the test when rsyslog's GnuTLS stream driver is missing
// (make deps installs rsyslog-gnutls).
func needGTLS(t *testing.T) {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so")
	if len(matches) == 0 {
		t.Skip("rsyslog's gtls driver is not installed (make deps installs rsyslog-gnutls)")
	}
}

// rsyslog → Sluice → rsyslog over mutual TLS (RFC 5425): a real rsyslogd
// forwards with omfwd and the gtls stream driver, presenting a client
// certificate, into Sluice's tls:// syslog input (client_ca_file set, so
// client certificates are required); Sluice's syslog output forwards raw
// over TLS, with its own client certificate, to a second rsyslogd whose
// imtcp requires one too (x509/certvalid). Every message arrives once and
// byte-exact. A client without a certificate is refused by Sluice and
// counted, and nothing it wrote is delivered.
func TestRsyslogTLSMutualBothWays(t *testing.T) {
	needGTLS(t)
	dir := t.TempDir()
	pki := t.TempDir()
	ca := testpki.NewCA(t, pki, "test")
	sluiceServer := ca.Server(t, "sluice-server")
	sluiceClient := ca.Client(t, "sluice-client")
	rsyslogServer := ca.Server(t, "rsyslog-server")
	rsyslogClient := ca.Client(t, "rsyslog-client")
	for _, f := range []string{sluiceServer.KeyFile, rsyslogServer.KeyFile, rsyslogClient.KeyFile, sluiceClient.KeyFile} {
		_ = os.Chmod(f, 0o644) // rsyslogd may drop privileges; harmless in a temp dir
	}

	senderPort, sluiceTLS, receiverPort := freePort(t), freePort(t), freePort(t)

	receiver := startRsyslog(t, fmt.Sprintf(`global(workDirectory="%%DIR%%"
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="%s"
  DefaultNetstreamDriverCertFile="%s"
  DefaultNetstreamDriverKeyFile="%s")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid")
input(type="imtcp" port="%d" ruleset="in")
template(name="raw" type="string" string="%%rawmsg%%\n")
ruleset(name="in") {
  action(type="omfile" file="%%DIR%%/received.log" template="raw")
}
`, ca.CertFile, rsyslogServer.CertFile, rsyslogServer.KeyFile, receiverPort), receiverPort)

	d := startDaemon(t, dir, fmt.Sprintf(`data_dir = "data"
admin {
  listen = "%%ADMIN%%"
}
input "syslog" "secure" {
  listen = ["tls://127.0.0.1:%d"]
  tls {
    cert_file      = %q
    key_file       = %q
    client_ca_file = %q
  }
}
output "syslog" "central" {
  targets = ["tls://127.0.0.1:%d"]
  format  = "raw"
  tls {
    ca_file   = %q
    cert_file = %q
    key_file  = %q
  }
  batch {
    max_wait = "5ms"
  }
}
`+rawCopyAndRoute, sluiceTLS, sluiceServer.CertFile, sluiceServer.KeyFile, ca.CertFile,
		receiverPort, ca.CertFile, sluiceClient.CertFile, sluiceClient.KeyFile))

	startRsyslog(t, fmt.Sprintf(`global(workDirectory="%%DIR%%"
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="%s"
  DefaultNetstreamDriverCertFile="%s"
  DefaultNetstreamDriverKeyFile="%s")
module(load="imtcp")
input(type="imtcp" port="%d" ruleset="fwd")
template(name="proto23" type="string" string="<%%PRI%%>1 %%TIMESTAMP:::date-rfc3339%% %%HOSTNAME%% %%APP-NAME%% %%PROCID%% %%MSGID%% %%STRUCTURED-DATA%% %%msg%%")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp" TCP_Framing="octet-counted"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/certvalid"
         template="proto23")
}
`, ca.CertFile, rsyslogClient.CertFile, rsyslogClient.KeyFile, senderPort, sluiceTLS), senderPort)

	// A client without a certificate: refused under mutual TLS. With TLS
	// 1.3 the client's handshake completes before the server has checked
	// its (missing) certificate, so the refusal shows on the first read.
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	raw, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", sluiceTLS), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	anon := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err = anon.HandshakeContext(ctx)
	cancel()
	if err == nil {
		_, _ = anon.Write([]byte("<13>1 - - intruder - - - must never be delivered\n"))
		_ = anon.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = anon.Read(make([]byte, 1))
	}
	if err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("a client without a certificate was not refused: %v", err)
	}
	d.waitMetric(`sluice_input_dropped_total{input="secure",reason="tls_handshake"}`, 1)

	const n = 200
	var want []string
	for i := range n {
		msg := fmt.Sprintf("tls message %03d with ünïcode and  two spaces", i)
		want = append(want, msg)
		logger(t, senderPort, "--tcp", "--octet-count", "--rfc5424", "-t", "app", "-p", "auth.warning", msg)
	}
	got := waitLines(t, filepath.Join(receiver.dir, "received.log"), n)
	archived := waitLines(t, filepath.Join(dir, "archive/copy.log"), n)
	slices.Sort(got)
	slices.Sort(archived)
	if !slices.Equal(got, archived) {
		t.Fatalf("the receiver's raw messages differ from Sluice's raw archive:\nreceived %q\narchived %q", got, archived)
	}
	for _, w := range want {
		found := 0
		for _, g := range got {
			if strings.HasPrefix(g, "<36>1 ") && strings.HasSuffix(g, " "+w) {
				found++
			}
		}
		if found != 1 {
			t.Fatalf("message %q arrived %d times in %q", w, found, got)
		}
	}
	for _, g := range got {
		if strings.Contains(g, "intruder") {
			t.Fatalf("a message of the refused client was delivered: %q", g)
		}
	}
	if v := d.metric(`sluice_input_events_total{input="secure"}`); v != n {
		t.Fatalf("sluice_input_events_total = %v, want %d", v, n)
	}
	// The certificates' expiry, for alerting before they lapse.
	for _, series := range []string{
		`sluice_tls_certificate_expiry_timestamp_seconds{component="input",name="secure"}`,
		`sluice_tls_certificate_expiry_timestamp_seconds{component="output",name="central"}`,
	} {
		if v := d.metric(series); v < float64(time.Now().Add(30*24*time.Hour).Unix()) {
			t.Errorf("%s = %v, want the certificate's expiry (90 days ahead)", series, v)
		}
	}
}
