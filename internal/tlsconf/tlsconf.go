// Package tlsconf turns the `tls` blocks of Sluice's configuration into
// *tls.Config values: Client for outputs that dial (http, syslog), Server
// for inputs that listen (syslog tls://). Both read their files when built,
// so a bad path or a broken PEM is a configuration error, reported as
// *conf.FieldError values naming the attribute (prefix + "ca_file", …).
//
// Server certificates are reloaded from disk when their files change (checked
// at most once a second, at handshake), so renewing a certificate needs no
// restart; a renewal that fails to load keeps the previous certificate and is
// reported through the OnReloadError callback.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sluicelog/sluice/internal/conf"
)

// Client is a dialling side's `tls` block. Without one, servers are verified
// against the system roots.
type Client struct {
	// CAFile is a PEM file of CA certificates that replace the system roots.
	CAFile string `hcl:"ca_file,optional"`
	// CertFile and KeyFile are a PEM client certificate (chain) and its key,
	// presented when the server asks for one. Both or neither.
	CertFile string `hcl:"cert_file,optional"`
	KeyFile  string `hcl:"key_file,optional"`
	// ServerName is the name verified in the server's certificate (and sent
	// as SNI); default: the host dialled.
	ServerName string `hcl:"server_name,optional"`
	// InsecureSkipVerify disables verification of the server's certificate.
	// Callers log a warning when it is set.
	InsecureSkipVerify bool `hcl:"insecure_skip_verify,optional"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `hcl:"min_version,optional"`
}

// Server is a listening side's `tls` block.
type Server struct {
	// CertFile and KeyFile are the server's PEM certificate (chain) and key.
	CertFile string `hcl:"cert_file"`
	KeyFile  string `hcl:"key_file"`
	// ClientCAFile is a PEM file of CAs that client certificates must chain
	// to. Setting it turns on client-certificate verification.
	ClientCAFile string `hcl:"client_ca_file,optional"`
	// ClientAuth is "none", "request" (verify a certificate if the client
	// sends one), or "require" (mutual TLS: refuse clients without a valid
	// certificate). Default: "require" when client_ca_file is set, else "none".
	ClientAuth string `hcl:"client_auth,optional"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `hcl:"min_version,optional"`
}

// ParseMinVersion maps "", "1.2" and "1.3" to the tls constants.
func ParseMinVersion(s string) (uint16, error) {
	switch s {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	case "1.0", "1.1":
		return 0, fmt.Errorf("TLS %s is obsolete (RFC 8996); want \"1.2\" or \"1.3\"", s)
	default:
		return 0, fmt.Errorf("unknown TLS version %q (want \"1.2\" or \"1.3\")", s)
	}
}

// Build returns the client's tls.Config. prefix qualifies the field names of
// errors (e.g. "tls."); errors are *conf.FieldError values.
func (c *Client) Build(prefix string) (*tls.Config, []error) {
	var errs []error
	tc := &tls.Config{ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	v, err := ParseMinVersion(c.MinVersion)
	if err != nil {
		errs = append(errs, conf.Field(prefix+"min_version", err))
	}
	tc.MinVersion = v
	if c.CAFile != "" {
		pool, err := loadPool(c.CAFile)
		if err != nil {
			errs = append(errs, conf.Field(prefix+"ca_file", err))
		}
		tc.RootCAs = pool
	}
	switch {
	case c.CertFile != "" && c.KeyFile == "":
		errs = append(errs, conf.Field(prefix+"cert_file", errors.New("cert_file needs key_file")))
	case c.CertFile == "" && c.KeyFile != "":
		errs = append(errs, conf.Field(prefix+"key_file", errors.New("key_file needs cert_file")))
	case c.CertFile != "":
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			errs = append(errs, conf.Field(prefix+"cert_file", fmt.Errorf("cannot load client certificate and key: %w", err)))
		} else {
			tc.Certificates = []tls.Certificate{cert}
		}
	}
	return tc, errs
}

// Build returns the server's tls.Config. onReloadError (may be nil) is called
// when a changed certificate file fails to load; the previous certificate
// stays in use. Errors are *conf.FieldError values qualified by prefix.
func (s *Server) Build(prefix string, onReloadError func(error)) (*tls.Config, []error) {
	var errs []error
	tc := &tls.Config{}
	v, err := ParseMinVersion(s.MinVersion)
	if err != nil {
		errs = append(errs, conf.Field(prefix+"min_version", err))
	}
	tc.MinVersion = v
	switch {
	case s.CertFile == "":
		errs = append(errs, conf.Field(prefix+"cert_file", errors.New("a TLS listener needs cert_file and key_file")))
	case s.KeyFile == "":
		errs = append(errs, conf.Field(prefix+"key_file", errors.New("a TLS listener needs cert_file and key_file")))
	default:
		kp, err := newKeypair(s.CertFile, s.KeyFile, onReloadError)
		if err != nil {
			errs = append(errs, conf.Field(prefix+"cert_file", err))
		} else {
			tc.GetCertificate = kp.get
		}
	}
	auth := s.ClientAuth
	if auth == "" {
		auth = "none"
		if s.ClientCAFile != "" {
			auth = "require"
		}
	}
	switch auth {
	case "none":
		tc.ClientAuth = tls.NoClientCert
		if s.ClientCAFile != "" {
			errs = append(errs, conf.Field(prefix+"client_auth", errors.New(`client_ca_file is set but client_auth = "none" would ignore it`)))
		}
	case "request", "require":
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if auth == "require" {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
		if s.ClientCAFile == "" {
			errs = append(errs, conf.Field(prefix+"client_ca_file", fmt.Errorf("client_auth = %q needs client_ca_file to verify client certificates against", auth)))
		}
	default:
		errs = append(errs, conf.Field(prefix+"client_auth", fmt.Errorf("unknown client_auth %q (want \"none\", \"request\" or \"require\")", auth)))
	}
	if s.ClientCAFile != "" {
		pool, err := loadPool(s.ClientCAFile)
		if err != nil {
			errs = append(errs, conf.Field(prefix+"client_ca_file", err))
		}
		tc.ClientCAs = pool
	}
	return tc, errs
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate found in %q", path)
	}
	return pool, nil
}

// keypair serves a certificate and reloads it when either file's size or
// modification time changes (checked at most once per second).
type keypair struct {
	certFile, keyFile string
	onErr             func(error)

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp
	checked time.Time
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.ModTime(), fi.Size()}
}

func newKeypair(certFile, keyFile string, onErr func(error)) (*keypair, error) {
	kp := &keypair{certFile: certFile, keyFile: keyFile, onErr: onErr}
	st := [2]fileStamp{stampOf(certFile), stampOf(keyFile)}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load server certificate and key: %w", err)
	}
	kp.cert, kp.stamp, kp.checked = &cert, st, time.Now()
	return kp, nil
}

func (kp *keypair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if now := time.Now(); now.Sub(kp.checked) >= time.Second {
		kp.checked = now
		st := [2]fileStamp{stampOf(kp.certFile), stampOf(kp.keyFile)}
		if st != kp.stamp {
			cert, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
			if err != nil {
				if kp.onErr != nil {
					kp.onErr(fmt.Errorf("reloading %s: %w (keeping the previous certificate)", kp.certFile, err))
				}
			} else {
				kp.cert = &cert
			}
			kp.stamp = st // do not retry a broken pair until the files change again
		}
	}
	return kp.cert, nil
}
