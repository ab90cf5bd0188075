// Package tlsconf turns the `tls` blocks of Sluice's configuration into
// *tls.Config values: Client for outputs that dial (http, syslog), Server
// for inputs that listen (syslog tls://). Both read their files when built,
// so a bad path or a broken PEM is a configuration error, reported as
// *conf.FieldError values naming the attribute (prefix + "ca_file", …).
//
// Certificates and keys (server and client) and a server's client CA file
// are reloaded from disk when their files change (size or modification time,
// checked at most once a second, at handshake), so renewing a certificate or
// rotating a CA needs no restart; a change that fails to load keeps the
// previous value and is reported through the onReloadError callback of
// Build. A client's ca_file is read when the output is built: at start, or
// when a reload changes that output's block (a reload of an unchanged
// block keeps the running output, CA pool included).
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
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
// errors (e.g. "tls."); errors are *conf.FieldError values. onReloadError
// (may be nil) is called when a changed client certificate fails to load;
// the previous one stays in use.
func (c *Client) Build(prefix string, onReloadError func(error)) (*tls.Config, []error) {
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
		kp, err := newKeypair(c.CertFile, c.KeyFile, onReloadError)
		if err != nil {
			errs = append(errs, conf.Field(prefix+"cert_file", fmt.Errorf("cannot load client certificate and key: %w", err)))
		} else {
			// Presented whatever CAs the server names, as a static
			// Certificates entry is.
			tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get(nil) }
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
			errs = append(errs, conf.Field(prefix+"cert_file", fmt.Errorf("cannot load server certificate and key: %w", err)))
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
		cas, err := newWatched([]string{s.ClientCAFile}, func() (*x509.CertPool, error) { return loadPool(s.ClientCAFile) },
			"client CA file", onReloadError)
		if err != nil {
			errs = append(errs, conf.Field(prefix+"client_ca_file", err))
		} else {
			tc.ClientCAs = cas.val
			tc.GetConfigForClient = clientCAsFollow(tc, cas)
		}
	}
	return tc, errs
}

// clientCAsFollow returns a GetConfigForClient for base that serves a clone
// of base with the current pool of cas whenever that pool has been
// reloaded (nil, meaning base itself, while it has not). A clone of base
// shares its session ticket keys.
func clientCAsFollow(base *tls.Config, cas *watched[*x509.CertPool]) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	var mu sync.Mutex
	var cur *tls.Config // the clone serving the current pool; nil: base
	return func(*tls.ClientHelloInfo) (*tls.Config, error) {
		pool, _ := cas.get()
		mu.Lock()
		defer mu.Unlock()
		switch {
		case pool == base.ClientCAs:
			return nil, nil
		case cur == nil || cur.ClientCAs != pool:
			cur = base.Clone()
			cur.ClientCAs = pool
			cur.GetConfigForClient = nil
		}
		return cur, nil
	}
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

// watched holds a value loaded from files and loads it again when the size
// or modification time of any of them changes, checked at most once per
// second when get is called. A load that fails keeps the previous value,
// is reported to onErr, and is not retried until the files change again.
// Safe for concurrent use.
type watched[T any] struct {
	files []string
	load  func() (T, error)
	what  string // for messages: "certificate", "client CA file"
	onErr func(error)

	mu      sync.Mutex
	val     T
	stamp   []fileStamp
	checked time.Time
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stamps(files []string) []fileStamp {
	st := make([]fileStamp, len(files))
	for i, f := range files {
		if fi, err := os.Stat(f); err == nil {
			st[i] = fileStamp{fi.ModTime(), fi.Size()}
		}
	}
	return st
}

// newWatched loads the value once; its error is the load's.
func newWatched[T any](files []string, load func() (T, error), what string, onErr func(error)) (*watched[T], error) {
	w := &watched[T]{files: files, load: load, what: what, onErr: onErr}
	st := stamps(files)
	v, err := load()
	if err != nil {
		return nil, err
	}
	w.val, w.stamp, w.checked = v, st, time.Now()
	return w, nil
}

// get returns the current value, reloading it first if the check is due
// and a file changed. The error is always nil (a failed reload keeps the
// previous value); it is there to fit tls.Config callbacks.
func (w *watched[T]) get() (T, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now := time.Now(); now.Sub(w.checked) >= time.Second {
		w.checked = now
		if st := stamps(w.files); !slices.Equal(st, w.stamp) {
			v, err := w.load()
			if err != nil {
				if w.onErr != nil {
					w.onErr(fmt.Errorf("reloading %s: %w (keeping the previous %s)", w.files[0], err, w.what))
				}
			} else {
				w.val = v
			}
			w.stamp = st // do not retry a broken file until it changes again
		}
	}
	return w.val, nil
}

// keypair is a certificate and key reloaded when either file changes.
type keypair struct{ *watched[*tls.Certificate] }

func newKeypair(certFile, keyFile string, onErr func(error)) (keypair, error) {
	w, err := newWatched([]string{certFile, keyFile}, func() (*tls.Certificate, error) {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		return &cert, err
	}, "certificate", onErr)
	return keypair{w}, err
}

// get serves as tls.Config.GetCertificate.
func (kp keypair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.watched.get() }
