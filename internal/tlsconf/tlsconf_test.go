package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/conf"
)

// files are the PEM files of a test PKI.
type files struct {
	dir                string
	ca, otherCA        string // CA certificates
	cert, key          string // a certificate signed by ca and its key
	otherKey           string // a key that matches no certificate here
	notPEM, empty, gap string // not PEM; empty; a path that does not exist
	caCert             *x509.Certificate
	caKey              *ecdsa.PrivateKey
}

var serial int64

func makeCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: k})
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newFiles(t *testing.T) *files {
	t.Helper()
	f := &files{dir: t.TempDir()}
	caCert, caKey, caPEM, _ := makeCert(t, "Test CA", nil, nil)
	f.caCert, f.caKey = caCert, caKey
	f.ca = write(t, f.dir, "ca.pem", caPEM)
	_, _, otherPEM, otherKeyPEM := makeCert(t, "Other CA", nil, nil)
	f.otherCA = write(t, f.dir, "other-ca.pem", otherPEM)
	f.otherKey = write(t, f.dir, "other.key", otherKeyPEM)
	_, _, certPEM, keyPEM := makeCert(t, "leaf", caCert, caKey)
	f.cert = write(t, f.dir, "cert.pem", certPEM)
	f.key = write(t, f.dir, "cert.key", keyPEM)
	f.notPEM = write(t, f.dir, "junk.pem", []byte("hello, not PEM\n"))
	f.empty = write(t, f.dir, "empty.pem", nil)
	f.gap = filepath.Join(f.dir, "missing.pem")
	return f
}

// fieldErr is the field and a part of the message of an expected error.
type fieldErr struct{ field, text string }

func checkErrs(t *testing.T, errs []error, want []fieldErr) {
	t.Helper()
	if len(errs) != len(want) {
		t.Fatalf("errors %v, want %v", errs, want)
	}
	for i, w := range want {
		var fe *conf.FieldError
		if !errors.As(errs[i], &fe) {
			t.Fatalf("error %d is not a *conf.FieldError: %v", i, errs[i])
		}
		if fe.Field != w.field || !strings.Contains(fe.Err.Error(), w.text) {
			t.Errorf("error %d: %s: %v\nwant %s: …%s…", i, fe.Field, fe.Err, w.field, w.text)
		}
	}
}

func TestParseMinVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint16
		err  string
	}{
		{"", tls.VersionTLS12, ""},
		{"1.2", tls.VersionTLS12, ""},
		{"1.3", tls.VersionTLS13, ""},
		{"1.0", 0, "obsolete (RFC 8996)"},
		{"1.1", 0, "obsolete (RFC 8996)"},
		{"1.4", 0, `unknown TLS version "1.4"`},
		{"TLS1.3", 0, `unknown TLS version "TLS1.3"`},
		{" 1.3", 0, "unknown TLS version"},
	} {
		v, err := ParseMinVersion(tc.in)
		switch {
		case tc.err == "" && (err != nil || v != tc.want):
			t.Errorf("ParseMinVersion(%q) = %x, %v; want %x", tc.in, v, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseMinVersion(%q) error %v; want …%s…", tc.in, err, tc.err)
		}
	}
}

func TestServerBuild(t *testing.T) {
	f := newFiles(t)
	cases := []struct {
		name string
		s    Server
		auth tls.ClientAuthType
		min  uint16
		cas  bool // ClientCAs set
		errs []fieldErr
	}{
		{"server only", Server{CertFile: f.cert, KeyFile: f.key}, tls.NoClientCert, tls.VersionTLS12, false, nil},
		{"explicit none", Server{CertFile: f.cert, KeyFile: f.key, ClientAuth: "none"}, tls.NoClientCert, tls.VersionTLS12, false, nil},
		{"min 1.3", Server{CertFile: f.cert, KeyFile: f.key, MinVersion: "1.3"}, tls.NoClientCert, tls.VersionTLS13, false, nil},
		{"client CA defaults to require", Server{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca}, tls.RequireAndVerifyClientCert, tls.VersionTLS12, true, nil},
		{"require", Server{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca, ClientAuth: "require"}, tls.RequireAndVerifyClientCert, tls.VersionTLS12, true, nil},
		{"request", Server{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca, ClientAuth: "request"}, tls.VerifyClientCertIfGiven, tls.VersionTLS12, true, nil},
		{"none with a client CA", Server{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca, ClientAuth: "none"}, tls.NoClientCert, tls.VersionTLS12, true,
			[]fieldErr{{"tls.client_auth", `client_auth = "none" would ignore it`}}},
		{"require without a client CA", Server{CertFile: f.cert, KeyFile: f.key, ClientAuth: "require"}, tls.RequireAndVerifyClientCert, tls.VersionTLS12, false,
			[]fieldErr{{"tls.client_ca_file", `client_auth = "require" needs client_ca_file`}}},
		{"request without a client CA", Server{CertFile: f.cert, KeyFile: f.key, ClientAuth: "request"}, tls.VerifyClientCertIfGiven, tls.VersionTLS12, false,
			[]fieldErr{{"tls.client_ca_file", `client_auth = "request" needs client_ca_file`}}},
		{"unknown client_auth", Server{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca, ClientAuth: "Require"}, tls.NoClientCert, tls.VersionTLS12, true,
			[]fieldErr{{"tls.client_auth", `unknown client_auth "Require"`}}},
		{"bad min_version", Server{CertFile: f.cert, KeyFile: f.key, MinVersion: "1.1"}, tls.NoClientCert, 0, false,
			[]fieldErr{{"tls.min_version", "obsolete"}}},
		{"no cert_file", Server{KeyFile: f.key}, tls.NoClientCert, tls.VersionTLS12, false,
			[]fieldErr{{"tls.cert_file", "needs cert_file and key_file"}}},
		{"no key_file", Server{CertFile: f.cert}, tls.NoClientCert, tls.VersionTLS12, false,
			[]fieldErr{{"tls.key_file", "needs cert_file and key_file"}}},
		{"missing cert file", Server{CertFile: f.gap, KeyFile: f.key}, tls.NoClientCert, tls.VersionTLS12, false,
			[]fieldErr{{"tls.cert_file", "no such file or directory"}}},
		{"missing key file", Server{CertFile: f.cert, KeyFile: f.gap}, tls.NoClientCert, tls.VersionTLS12, false,
			[]fieldErr{{"tls.cert_file", "missing.pem: no such file or directory"}}},
		{"cert not PEM", Server{CertFile: f.notPEM, KeyFile: f.key}, tls.NoClientCert, tls.VersionTLS12, false,
			[]fieldErr{{"tls.cert_file", "failed to find any PEM data in certificate input"}}},
		{"empty cert", Server{CertFile: f.empty, KeyFile: f.key}, tls.NoClientCert, tls.VersionTLS12, false,
			[]fieldErr{{"tls.cert_file", "failed to find any PEM data in certificate input"}}},
		{"key not PEM", Server{CertFile: f.cert, KeyFile: f.notPEM}, tls.NoClientCert, tls.VersionTLS12, false,
			[]fieldErr{{"tls.cert_file", "failed to find any PEM data in key input"}}},
		{"cert and key swapped", Server{CertFile: f.key, KeyFile: f.cert}, tls.NoClientCert, tls.VersionTLS12, false,
			[]fieldErr{{"tls.cert_file", "cannot load server certificate and key"}}},
		{"key of another certificate", Server{CertFile: f.cert, KeyFile: f.otherKey}, tls.NoClientCert, tls.VersionTLS12, false,
			[]fieldErr{{"tls.cert_file", "private key does not match public key"}}},
		{"missing client CA", Server{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.gap}, tls.RequireAndVerifyClientCert, tls.VersionTLS12, false,
			[]fieldErr{{"tls.client_ca_file", "cannot read CA file"}}},
		{"client CA not PEM", Server{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.notPEM}, tls.RequireAndVerifyClientCert, tls.VersionTLS12, false,
			[]fieldErr{{"tls.client_ca_file", "no PEM certificate found in"}}},
		{"client CA is a key", Server{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.key}, tls.RequireAndVerifyClientCert, tls.VersionTLS12, false,
			[]fieldErr{{"tls.client_ca_file", "no PEM certificate found in"}}},
		{"all wrong", Server{CertFile: f.gap, KeyFile: f.key, ClientAuth: "request", MinVersion: "2"}, tls.VerifyClientCertIfGiven, 0, false,
			[]fieldErr{{"tls.min_version", "unknown TLS version"}, {"tls.cert_file", "no such file"}, {"tls.client_ca_file", "needs client_ca_file"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, errs := tc.s.Build("tls.", nil)
			checkErrs(t, errs, tc.errs)
			if cfg == nil {
				t.Fatal("nil config")
			}
			if cfg.ClientAuth != tc.auth || cfg.MinVersion != tc.min || (cfg.ClientCAs != nil) != tc.cas {
				t.Errorf("ClientAuth %v, MinVersion %x, ClientCAs %v", cfg.ClientAuth, cfg.MinVersion, cfg.ClientCAs != nil)
			}
			if len(tc.errs) == 0 {
				cert, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
				if err != nil || cert == nil || cert.Leaf == nil || cert.Leaf.Subject.CommonName != "leaf" {
					t.Errorf("GetCertificate = %v, %v", cert, err)
				}
			}
		})
	}
}

func TestClientBuild(t *testing.T) {
	f := newFiles(t)
	cases := []struct {
		name  string
		c     Client
		roots bool // RootCAs set
		certs int
		min   uint16
		errs  []fieldErr
	}{
		{"system roots", Client{}, false, 0, tls.VersionTLS12, nil},
		{"CA file", Client{CAFile: f.ca}, true, 0, tls.VersionTLS12, nil},
		{"client certificate", Client{CAFile: f.ca, CertFile: f.cert, KeyFile: f.key}, true, 1, tls.VersionTLS12, nil},
		{"min 1.3", Client{MinVersion: "1.3"}, false, 0, tls.VersionTLS13, nil},
		{"server name and insecure pass through", Client{ServerName: "syslog.example", InsecureSkipVerify: true}, false, 0, tls.VersionTLS12, nil},
		{"bad min_version", Client{MinVersion: "1.0"}, false, 0, 0, []fieldErr{{"tls.min_version", "obsolete"}}},
		{"missing CA file", Client{CAFile: f.gap}, false, 0, tls.VersionTLS12, []fieldErr{{"tls.ca_file", "cannot read CA file"}}},
		{"CA not PEM", Client{CAFile: f.notPEM}, false, 0, tls.VersionTLS12, []fieldErr{{"tls.ca_file", "no PEM certificate found"}}},
		{"empty CA", Client{CAFile: f.empty}, false, 0, tls.VersionTLS12, []fieldErr{{"tls.ca_file", "no PEM certificate found"}}},
		{"cert without key", Client{CertFile: f.cert}, false, 0, tls.VersionTLS12, []fieldErr{{"tls.cert_file", "cert_file needs key_file"}}},
		{"key without cert", Client{KeyFile: f.key}, false, 0, tls.VersionTLS12, []fieldErr{{"tls.key_file", "key_file needs cert_file"}}},
		{"mismatched key", Client{CertFile: f.cert, KeyFile: f.otherKey}, false, 0, tls.VersionTLS12,
			[]fieldErr{{"tls.cert_file", "private key does not match public key"}}},
		{"cert not PEM", Client{CertFile: f.notPEM, KeyFile: f.key}, false, 0, tls.VersionTLS12,
			[]fieldErr{{"tls.cert_file", "cannot load client certificate and key"}}},
		{"all wrong", Client{CAFile: f.notPEM, KeyFile: f.key, MinVersion: "3"}, false, 0, 0,
			[]fieldErr{{"tls.min_version", "unknown TLS version"}, {"tls.ca_file", "no PEM"}, {"tls.key_file", "needs cert_file"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, errs := tc.c.Build("tls.", nil)
			checkErrs(t, errs, tc.errs)
			if cfg == nil {
				t.Fatal("nil config")
			}
			certs := 0
			if cfg.GetClientCertificate != nil {
				if c, err := cfg.GetClientCertificate(&tls.CertificateRequestInfo{}); err == nil && c != nil && c.Leaf != nil {
					certs = 1
				}
			}
			if (cfg.RootCAs != nil) != tc.roots || certs != tc.certs || cfg.MinVersion != tc.min {
				t.Errorf("RootCAs %v, %d certificates, MinVersion %x", cfg.RootCAs != nil, certs, cfg.MinVersion)
			}
			if cfg.ServerName != tc.c.ServerName || cfg.InsecureSkipVerify != tc.c.InsecureSkipVerify {
				t.Errorf("ServerName %q, InsecureSkipVerify %v", cfg.ServerName, cfg.InsecureSkipVerify)
			}
		})
	}
}

// A client built from a Client block and a server built from a Server
// block complete a mutual-TLS handshake over a pipe.
func TestClientServerHandshake(t *testing.T) {
	f := newFiles(t)
	scfg, errs := (&Server{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca, MinVersion: "1.3"}).Build("", nil)
	checkErrs(t, errs, nil)
	ccfg, errs := (&Client{CAFile: f.ca, CertFile: f.cert, KeyFile: f.key, ServerName: "127.0.0.1"}).Build("", nil)
	checkErrs(t, errs, nil)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	_ = a.SetDeadline(time.Now().Add(10 * time.Second))
	_ = b.SetDeadline(time.Now().Add(10 * time.Second))
	done := make(chan error, 1)
	srv := tls.Server(a, scfg)
	go func() { done <- srv.Handshake() }()
	cli := tls.Client(b, ccfg)
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := srv.ConnectionState(); st.Version != tls.VersionTLS13 || len(st.PeerCertificates) != 1 || st.PeerCertificates[0].Subject.CommonName != "leaf" {
		t.Errorf("server state: version %x, %d peer certificates", st.Version, len(st.PeerCertificates))
	}
}

// replace writes data to path through a rename, and dates it mod.
func replace(t *testing.T, path string, data []byte, mod time.Time) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mod, mod); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// The keypair's reload logic, without waiting for the once-a-second check:
// the test moves the last check back in time.
func TestKeypairReload(t *testing.T) {
	f := newFiles(t)
	var reloadErrs []error
	kp, err := newKeypair(f.cert, f.key, func(err error) { reloadErrs = append(reloadErrs, err) })
	if err != nil {
		t.Fatal(err)
	}
	cn := func() string {
		t.Helper()
		c, err := kp.get(nil)
		if err != nil || c == nil {
			t.Fatalf("get: %v, %v", c, err)
		}
		return c.Leaf.Subject.CommonName
	}
	expire := func() { kp.mu.Lock(); kp.checked = time.Now().Add(-2 * time.Second); kp.mu.Unlock() }
	if cn() != "leaf" {
		t.Fatal("initial certificate")
	}
	mod := time.Now().Add(time.Minute)
	var nextKey []byte

	steps := []struct {
		name       string
		change     func()
		expire     bool // the once-a-second check is due
		want       string
		reloadErrs int
	}{
		{"renewed, check not due yet", func() {
			_, _, c, k := makeCert(t, "renewed", f.caCert, f.caKey)
			replace(t, f.key, k, mod)
			replace(t, f.cert, c, mod)
		}, false, "leaf", 0},
		{"renewed, check due", func() {}, true, "renewed", 0},
		{"unchanged files are not reloaded", func() {}, true, "renewed", 0},
		{"broken certificate keeps the previous one", func() {
			replace(t, f.cert, []byte("junk"), mod.Add(time.Minute))
		}, true, "renewed", 1},
		{"a broken pair is not retried until it changes", func() {}, true, "renewed", 1},
		{"cert renewed before its key: mismatch reported", func() {
			_, _, c, k := makeCert(t, "renewed-again", f.caCert, f.caKey)
			replace(t, f.cert, c, mod.Add(2*time.Minute))
			nextKey = k // the key follows in the next step
		}, true, "renewed", 2},
		{"then the key: loaded", func() {
			replace(t, f.key, nextKey, mod.Add(2*time.Minute))
		}, true, "renewed-again", 2},
		{"a removed file keeps the certificate", func() {
			if err := os.Remove(f.key); err != nil {
				t.Fatal(err)
			}
		}, true, "renewed-again", 3},
	}
	for _, s := range steps {
		s.change()
		if s.expire {
			expire()
		}
		if got := cn(); got != s.want {
			t.Errorf("%s: serving %q, want %q", s.name, got, s.want)
		}
		if len(reloadErrs) != s.reloadErrs {
			t.Errorf("%s: %d reload errors, want %d: %v", s.name, len(reloadErrs), s.reloadErrs, reloadErrs)
		}
	}
	for _, err := range reloadErrs {
		if !strings.Contains(err.Error(), "keeping the previous certificate") || !strings.Contains(err.Error(), f.cert) {
			t.Errorf("reload error %q", err)
		}
	}
}

// Build wires the reload callback and GetCertificate of a Server block.
func TestServerBuildReload(t *testing.T) {
	f := newFiles(t)
	var reloadErrs []error
	cfg, errs := (&Server{CertFile: f.cert, KeyFile: f.key}).Build("", func(err error) { reloadErrs = append(reloadErrs, err) })
	checkErrs(t, errs, nil)
	replace(t, f.cert, []byte("junk"), time.Now().Add(time.Minute))
	deadline := time.Now().Add(5 * time.Second)
	for len(reloadErrs) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no reload error reported")
		}
		c, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil || c.Leaf.Subject.CommonName != "leaf" {
			t.Fatalf("GetCertificate: %v, %v", c, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// handshake runs a TLS handshake between a server with scfg and a client
// with ccfg over loopback TCP and returns the common name of the client
// certificate the server verified ("" without one) and the server's error.
func handshake(t *testing.T, scfg, ccfg *tls.Config) (cn string, err error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		err error
		cn  string
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		srv := tls.Server(c, scfg)
		err = srv.Handshake()
		r := result{err: err}
		if st := srv.ConnectionState(); err == nil && len(st.PeerCertificates) > 0 {
			r.cn = st.PeerCertificates[0].Subject.CommonName
		}
		done <- r
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_ = tls.Client(c, ccfg).Handshake() // the server's verdict is what counts
	r := <-done
	return r.cn, r.err
}

// until retries cond for up to 5 s (the files are checked once a second).
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
	}
}

// A server's client_ca_file is followed: a client of a CA added to the
// file is accepted once the file changes, without rebuilding the config;
// a broken file keeps the previous pool and is reported.
func TestServerClientCAReload(t *testing.T) {
	f := newFiles(t)
	var mu sync.Mutex
	var reloadErrs []error
	scfg, errs := (&Server{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca}).Build("", func(err error) {
		mu.Lock()
		reloadErrs = append(reloadErrs, err)
		mu.Unlock()
	})
	checkErrs(t, errs, nil)
	newCA, newCAKey, newCAPEM, _ := makeCert(t, "New CA", nil, nil)
	_, _, ncPEM, nkPEM := makeCert(t, "new-client", newCA, newCAKey)
	newClient := &Client{CAFile: f.ca, CertFile: write(t, f.dir, "nc.pem", ncPEM), KeyFile: write(t, f.dir, "nc.key", nkPEM), ServerName: "127.0.0.1"}
	ncfg, errs := newClient.Build("", nil)
	checkErrs(t, errs, nil)
	ocfg, errs := (&Client{CAFile: f.ca, CertFile: f.cert, KeyFile: f.key, ServerName: "127.0.0.1"}).Build("", nil)
	checkErrs(t, errs, nil)

	if _, err := handshake(t, scfg, ncfg); err == nil {
		t.Fatal("a client of a CA not in client_ca_file was accepted")
	}
	oldPEM, err := os.ReadFile(f.ca)
	if err != nil {
		t.Fatal(err)
	}
	replace(t, f.ca, append(oldPEM, newCAPEM...), time.Now().Add(time.Minute))
	until(t, "the new CA is trusted", func() bool { cn, err := handshake(t, scfg, ncfg); return err == nil && cn == "new-client" })
	if cn, err := handshake(t, scfg, ocfg); err != nil || cn != "leaf" {
		t.Fatalf("a client of the CA still in the file: %v, %q", err, cn)
	}

	replace(t, f.ca, []byte("junk"), time.Now().Add(2*time.Minute))
	until(t, "the broken CA file is reported", func() bool {
		_, _ = handshake(t, scfg, ncfg)
		mu.Lock()
		defer mu.Unlock()
		return len(reloadErrs) > 0
	})
	if cn, err := handshake(t, scfg, ncfg); err != nil || cn != "new-client" {
		t.Fatalf("after a broken CA file the previous pool must stay: %v, %q", err, cn)
	}
	mu.Lock()
	defer mu.Unlock()
	if e := reloadErrs[0].Error(); !strings.Contains(e, f.ca) || !strings.Contains(e, "keeping the previous client CA file") {
		t.Errorf("reload error %q", e)
	}
}

// A client certificate is followed too: after a renewal the server sees
// the new one, without rebuilding the client's config.
func TestClientCertReload(t *testing.T) {
	f := newFiles(t)
	scfg, errs := (&Server{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca}).Build("", nil)
	checkErrs(t, errs, nil)
	ccfg, errs := (&Client{CAFile: f.ca, CertFile: f.cert, KeyFile: f.key, ServerName: "127.0.0.1"}).Build("", nil)
	checkErrs(t, errs, nil)
	if cn, err := handshake(t, scfg, ccfg); err != nil || cn != "leaf" {
		t.Fatalf("before renewal: %v, %q", err, cn)
	}
	// A separate pair, so the server's own certificate stays as it is.
	cert, key := write(t, f.dir, "client.pem", nil), write(t, f.dir, "client.key", nil)
	_, _, cp, kp := makeCert(t, "client-1", f.caCert, f.caKey)
	replace(t, cert, cp, time.Now())
	replace(t, key, kp, time.Now())
	ccfg, errs = (&Client{CAFile: f.ca, CertFile: cert, KeyFile: key, ServerName: "127.0.0.1"}).Build("", nil)
	checkErrs(t, errs, nil)
	_, _, cp, kp = makeCert(t, "client-2", f.caCert, f.caKey)
	replace(t, key, kp, time.Now().Add(time.Minute))
	replace(t, cert, cp, time.Now().Add(time.Minute))
	until(t, "the renewed client certificate is presented", func() bool { cn, err := handshake(t, scfg, ccfg); return err == nil && cn == "client-2" })
}
