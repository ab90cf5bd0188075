package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// selfSigned writes a self-signed certificate valid until notAfter and its
// key into dir, returning the two files.
func selfSigned(t *testing.T, dir, cn string, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return write(t, dir, cn+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		write(t, dir, cn+".key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: k}))
}

func TestExpiryWarningAndCollector(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	for _, tc := range []struct {
		name     string
		notAfter time.Time
		want     string // in the warning; "" for none
	}{
		{"expired", now.Add(-time.Hour), "expired on"},
		{"in ten days", now.Add(10*24*time.Hour + time.Hour), "(in 10 days)"},
		{"in ninety days", now.Add(90 * 24 * time.Hour), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, key := selfSigned(t, dir, strings.ReplaceAll(tc.name, " ", "-"), tc.notAfter)
			srv, errs := (&Server{CertFile: cert, KeyFile: key}).Build("", nil)
			checkErrs(t, errs, nil)
			cli, errs := (&Client{CertFile: cert, KeyFile: key}).Build("", nil)
			checkErrs(t, errs, nil)
			for _, cfg := range []struct {
				side string
				w    string
				c    *ExpiryCollector
			}{{"server", ExpiryWarning(srv, now), NewExpiryCollector("input", "in", srv)},
				{"client", ExpiryWarning(cli, now), NewExpiryCollector("output", "out", cli)}} {
				if (tc.want == "") != (cfg.w == "") || !strings.Contains(cfg.w, tc.want) {
					t.Errorf("%s: warning %q, want one containing %q", cfg.side, cfg.w, tc.want)
				}
				if v := testutil.ToFloat64(cfg.c); v != float64(tc.notAfter.Unix()) {
					t.Errorf("%s: expiry metric %v, want %d", cfg.side, v, tc.notAfter.Unix())
				}
			}
		})
	}
	// A config without a certificate: no warning, no series.
	cli, errs := (&Client{}).Build("", nil)
	checkErrs(t, errs, nil)
	if w := ExpiryWarning(cli, now); w != "" {
		t.Errorf("warning without a certificate: %q", w)
	}
	if n := testutil.CollectAndCount(NewExpiryCollector("output", "x", cli)); n != 0 {
		t.Errorf("%d series without a certificate", n)
	}
	if n := testutil.CollectAndCount(NewExpiryCollector("output", "x", nil)); n != 0 {
		t.Errorf("%d series for a nil config", n)
	}
}
