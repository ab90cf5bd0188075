package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/sluicelog/sluice/internal/testpki"
)

// The tls scenario is the plain one (TCP syslog → archive, raw, no
// compression) over TLS: Sluice's tls:// listener against rsyslog's imtcp
// with the GnuTLS driver (Debian package rsyslog-gnutls), one TLS 1.3
// connection from this process, server authentication only.

// benchPKI is a throwaway CA and a server certificate for 127.0.0.1.
type benchPKI struct {
	dir                       string
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
}

func makeBenchPKI() (*benchPKI, error) {
	dir, err := os.MkdirTemp("", "sluice-bench-pki")
	if err != nil {
		return nil, err
	}
	ca, err := testpki.Make(dir, "bench")
	if err != nil {
		return nil, fmt.Errorf("bench CA: %w", err)
	}
	srv, err := ca.Issue("server", x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, fmt.Errorf("bench server certificate: %w", err)
	}
	for _, f := range []string{srv.KeyFile, srv.CertFile} {
		_ = os.Chmod(f, 0o644) // readable by rsyslogd whatever user it runs as
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &benchPKI{dir: dir, caFile: ca.CertFile, certFile: srv.CertFile, keyFile: srv.KeyFile, pool: pool}, nil
}

// dialer connects to 127.0.0.1:port over TLS, verifying the server.
func (p *benchPKI) dialer(port int) func() (net.Conn, error) {
	return func() (net.Conn, error) {
		return tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: p.pool, ServerName: "127.0.0.1"})
	}
}

// gtlsAvailable reports whether rsyslog's GnuTLS stream driver is
// installed.
func gtlsAvailable() bool {
	for _, pattern := range []string{"/usr/lib/*/rsyslog/lmnsd_gtls.so", "/usr/lib/rsyslog/lmnsd_gtls.so", "/usr/lib64/rsyslog/lmnsd_gtls.so"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return true
		}
	}
	return false
}
