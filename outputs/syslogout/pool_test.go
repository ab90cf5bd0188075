package syslogout

import (
	"crypto/x509"
	"os"
	"testing"
)

type x509CertPool = x509.CertPool

func loadPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		t.Fatal("no certificate")
	}
	return p
}
