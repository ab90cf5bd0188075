package httpout

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/outputs"
)

// pki is a test CA that issues certificates.
type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &pki{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate and key (PEM) for the names and IPs given,
// for server or client use.
func (p *pki) issue(t *testing.T, client bool, dns []string, ips []net.IP) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames: dns, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// syncBuffer is a log destination safe for concurrent use.
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

// HTTPS with a private CA and a client certificate the server requires.
// A wrong CA, a wrong server name and a missing client certificate are
// retryable errors, logged clearly; insecure_skip_verify connects anyway.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA, otherCA := newPKI(t, "server CA"), newPKI(t, "client CA"), newPKI(t, "other CA")
	srvCert, srvKey := serverCA.issue(t, false, []string{"sink.test"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	cliCert, cliKey := clientCA.issue(t, true, nil, nil)
	caFile := writeFile(t, dir, "ca.pem", serverCA.pem)
	otherCAFile := writeFile(t, dir, "other-ca.pem", otherCA.pem)
	certFile := writeFile(t, dir, "client.pem", cliCert)
	keyFile := writeFile(t, dir, "client.key", cliKey)

	s := &sink{t: t, enc: encNDJSON}
	s.srv = newTLSServer(t, s, srvCert, srvKey, clientCA)

	cases := []struct {
		name    string
		tls     TLSConfig
		wantErr string // a regexp; "" = delivered
		wantLog string
	}{
		{"ca and client cert", TLSConfig{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}, "", ""},
		{"server name", TLSConfig{CAFile: caFile, CertFile: certFile, KeyFile: keyFile, ServerName: "sink.test"}, "", ""},
		{"wrong ca", TLSConfig{CAFile: otherCAFile, CertFile: certFile, KeyFile: keyFile}, "TLS verification failed", "TLS verification of the server's certificate failed"},
		{"wrong server name", TLSConfig{CAFile: caFile, CertFile: certFile, KeyFile: keyFile, ServerName: "other.test"}, "TLS verification failed", "check tls.ca_file and tls.server_name"},
		{"system roots", TLSConfig{CertFile: certFile, KeyFile: keyFile}, "TLS verification failed", "TLS verification"},
		// With TLS 1.3 the client learns of the refusal while reading the
		// response (the alert) or, if the server closed first, while still
		// writing the request: either way the error is retryable.
		{"no client cert", TLSConfig{CAFile: caFile}, "TLS handshake refused|broken pipe|connection reset", ""},
		{"insecure", TLSConfig{InsecureSkipVerify: true, CertFile: certFile, KeyFile: keyFile}, "", "insecure_skip_verify"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			cfg := DefaultConfig()
			cfg.URL = s.srv.URL
			cfg.TLS = &tc.tls
			out, err := New(cfg, outputs.Env{Name: "tls", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			o := out.(*output)
			defer o.Close()
			before := len(s.acceptedItems())
			evs := mkEvents(10)
			err = o.Write(bg, evs)
			t.Logf("Write: %v", err)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Write: %v", err)
			case tc.wantErr == "":
				if got := len(s.acceptedItems()) - before; got != 10 {
					t.Fatalf("%d events arrived", got)
				}
			case err == nil || !regexp.MustCompile(tc.wantErr).MatchString(err.Error()):
				t.Fatalf("Write = %v; want …%s…", err, tc.wantErr)
			case errors.Is(err, outputs.ErrPermanent):
				t.Fatalf("a TLS failure must be retryable: %v", err)
			}
			if tc.wantLog != "" && !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log lacks %q:\n%s", tc.wantLog, logs.String())
			}
		})
	}
}

func newTLSServer(t *testing.T, s *sink, certPEM, keyPEM []byte, clientCA *pki) *httptest.Server {
	t.Helper()
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}
