// Package httpout is the "http" output: it POSTs batches of events to an
// HTTP endpoint as NDJSON, as a JSON array, or as Splunk HTTP Event
// Collector envelopes, optionally gzip-compressed, over HTTP or HTTPS (with a
// private CA, a client certificate and a server name).
//
// The package is named httpout, not http, so that it does not shadow
// net/http; the output type in configurations is "http".
//
// # Requests
//
// The router hands Write one batch (see the output's `batch` block). Write
// encodes it and splits it into requests whose uncompressed body stays
// within max_body_bytes (an event larger than that is sent alone), then
// sends them, up to max_in_flight at a time. Connections are kept alive and
// reused across Writes.
//
// # Delivery
//
// Every request is classified by its outcome:
//
//   - 2xx: accepted.
//   - a connection error, a timeout, a 3xx (redirects are not followed),
//     408, 429 or 5xx: retryable. No further requests of the batch are
//     started and Write returns an error the router retries with backoff;
//     with a Retry-After header (seconds or HTTP-date) the error is an
//     *outputs.RetryAfterError carrying it.
//   - 413: the request is split in two halves, sent in order, recursively,
//     down to a single event, which is then rejected as below.
//   - any other 4xx: rejected. The events are appended to dead_letter_file
//     (if set) and otherwise dropped, counted and logged; Write reports them
//     with an error wrapping outputs.ErrPermanent (all events of the batch)
//     or an *outputs.PartialError (some), so the router counts the drop.
//
// A retry of the same batch (the router passes the same events again) sends
// only the events that were neither accepted nor rejected by an earlier
// attempt: requests accepted before a failure are not repeated, and rejected
// events are not dead-lettered twice. Duplicates therefore arise only when a
// request failed after the server had processed it (a lost response, a
// timeout) or after a restart with a disk queue: delivery is at least once.
//
// With max_in_flight = 1 (the default) requests are sent one after the
// other and nothing after a failed request is sent, so events reach the
// server in queue order. With more, the requests of one batch run
// concurrently and may arrive in any order, and a retried request arrives
// after later ones.
//
// A TLS failure (the server's certificate does not verify, or the server
// refuses ours) is a configuration problem, but it is retryable like a
// connection error, so that queued events survive until it is fixed; each
// one is logged at error level naming the settings to check.
//
// # Dead letters
//
// dead_letter_file receives one JSON object per rejected event:
//
//	{"time":"…","output":"NAME","status":400,"response":"…","event":…}
//
// time is when it was rejected (RFC 3339, UTC), response the first 1 KiB of
// the response body (invalid UTF-8 replaced), event the event exactly as it
// was encoded in the request body (a JSON object). The file is opened by Open
// (creating its directory), appended to and fsynced once per rejected
// request. If it cannot be written, the events stay in the queue and the
// write is retried like a failed request: nothing is dropped silently.
package httpout

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/internal/tlsconf"
	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/outputs/format"
)

// Config is the body of an `output "http" "NAME" { … }` block.
type Config struct {
	// URL is the endpoint, http:// or https://, without credentials.
	// Required.
	URL string `hcl:"url"`
	// Method is "POST" (default) or "PUT".
	Method string `hcl:"method,optional"`
	// Headers are added to every request. Values may call env(). Content-
	// Length, Transfer-Encoding and Content-Encoding are managed by the
	// output; Content-Type defaults to the encoding's type; Host sets the
	// request's Host.
	Headers map[string]string `hcl:"headers,optional"`
	// BearerToken sends "Authorization: Bearer TOKEN".
	BearerToken string `hcl:"bearer_token,optional"`
	// BasicAuth sends HTTP basic authentication.
	BasicAuth *BasicAuthConfig `hcl:"basic_auth,block"`
	// Timeout bounds each request, from connecting to reading the response.
	// Default "30s".
	Timeout string `hcl:"timeout,optional"`
	// Encoding of the body: "ndjson" (default: one JSON event per line),
	// "json_array" (one JSON array of events) or "splunk_hec" (HEC event
	// envelopes, one per line).
	Encoding string `hcl:"encoding,optional"`
	// SplunkHEC sets the HEC envelope fields; only with encoding
	// "splunk_hec".
	SplunkHEC *HECConfig `hcl:"splunk_hec,block"`
	// Compression of the body: "none" (default) or "gzip" (sent with
	// Content-Encoding: gzip).
	Compression string `hcl:"compression,optional"`
	// Level is the gzip level, 1 (fastest, default) to 9.
	Level int `hcl:"level,optional"`
	// MaxBodyBytes bounds the uncompressed body of one request; a batch
	// whose encoding is larger is sent as several requests. Default "4MiB".
	MaxBodyBytes string `hcl:"max_body_bytes,optional"`
	// MaxInFlight is the number of requests of one batch sent concurrently,
	// 1 (default; keeps order) to 64.
	MaxInFlight int `hcl:"max_in_flight,optional"`
	// DeadLetterFile receives the events the server rejects permanently,
	// as JSON lines; empty: such events are dropped (counted and logged).
	DeadLetterFile string `hcl:"dead_letter_file,optional"`
	// TLS configures https:// connections.
	TLS *TLSConfig `hcl:"tls,block"`
}

// BasicAuthConfig is the `basic_auth` block.
type BasicAuthConfig struct {
	Username string `hcl:"username"`
	Password string `hcl:"password,optional"`
}

// TLSConfig is the `tls` block. Without it, https:// URLs are verified
// against the system's roots.
type TLSConfig = tlsconf.Client

// HECConfig is the `splunk_hec` block: the envelope fields of each event.
// host, source, sourcetype and index are templates: literal text with
// {stream}, {input}, {origin}, {host}, {app}, {procid}, {msgid}, {facility}
// and {severity} replaced by the event's fields. A field that renders empty
// is left out of the envelope (HEC then applies the token's defaults).
type HECConfig struct {
	Host       string `hcl:"host,optional"`       // default "{host}"
	Source     string `hcl:"source,optional"`     // default "{app}"
	Sourcetype string `hcl:"sourcetype,optional"` // default "syslog"
	Index      string `hcl:"index,optional"`      // default "" (the token's default index)
	// Event is what goes in "event": "raw" (default: the original frame as a
	// string), "message" (the MSG part as a string) or "json" (the event as
	// the JSON format's object).
	Event string `hcl:"event,optional"`
}

// DefaultConfig returns a Config with every optional attribute at its
// default.
func DefaultConfig() *Config {
	return &Config{
		Method:       http.MethodPost,
		Timeout:      "30s",
		Encoding:     "ndjson",
		Compression:  "none",
		Level:        1,
		MaxBodyBytes: "4MiB",
		MaxInFlight:  1,
	}
}

// Limits of the configuration.
const (
	maxInFlightLimit = 64
	maxBodyLimit     = 1 << 30
	defaultTimeout   = 30 * time.Second
	defaultMaxBody   = 4 << 20
)

// encoding is the body's shape.
type encoding int

const (
	encNDJSON encoding = iota
	encJSONArray
	encHEC
)

// settings is a validated Config.
type settings struct {
	url         *url.URL
	logURL      string // scheme://host/path, for logs (no query, no credentials)
	method      string
	header      http.Header // complete header of every request, Content-Type included
	host        string      // Host override, "" for the URL's host
	timeout     time.Duration
	enc         encoding
	hec         *hecSettings
	gzip        bool
	level       int
	maxBody     int
	maxInFlight int
	deadLetter  string
	tls         *tls.Config // nil: Go's defaults
	insecure    bool
}

// parseConfig validates cfg; errors are *conf.FieldError joined.
func parseConfig(cfg *Config, onReloadError func(error)) (settings, error) {
	var s settings
	var errs []error
	add := func(field string, err error) {
		if err != nil {
			errs = append(errs, conf.Field(field, err))
		}
	}

	u, err := parseURL(cfg.URL)
	add("url", err)
	if err == nil {
		s.url = u
		s.logURL = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
		if cfg.TLS != nil && u.Scheme != "https" {
			add("url", fmt.Errorf("a tls block needs an https:// URL, got %q", u.Scheme+"://…"))
		}
	}

	switch m := strings.ToUpper(strings.TrimSpace(cfg.Method)); m {
	case "", http.MethodPost:
		s.method = http.MethodPost
	case http.MethodPut:
		s.method = m
	default:
		add("method", fmt.Errorf("unsupported method %q (want \"POST\" or \"PUT\")", cfg.Method))
	}

	timeout := strings.TrimSpace(cfg.Timeout)
	if timeout == "" {
		s.timeout = defaultTimeout
	} else if s.timeout, err = conf.ParseDuration(timeout); err != nil {
		add("timeout", err)
	} else if s.timeout == 0 {
		add("timeout", errors.New("must be greater than 0"))
	}

	switch cfg.Encoding {
	case "", "ndjson":
		s.enc = encNDJSON
	case "json_array":
		s.enc = encJSONArray
	case "splunk_hec":
		s.enc = encHEC
	default:
		add("encoding", fmt.Errorf("unknown encoding %q (want \"ndjson\", \"json_array\" or \"splunk_hec\")", cfg.Encoding))
		s.enc = -1
	}
	if cfg.SplunkHEC != nil && (s.enc == encNDJSON || s.enc == encJSONArray) {
		add("encoding", fmt.Errorf("a splunk_hec block needs encoding = \"splunk_hec\", got %q", cfg.Encoding))
	}
	if s.enc == encHEC || cfg.SplunkHEC != nil {
		hc := cfg.SplunkHEC
		if hc == nil {
			hc = &HECConfig{}
		}
		var herrs []error
		s.hec, herrs = parseHEC(hc)
		errs = append(errs, herrs...)
	}

	switch cfg.Compression {
	case "", "none":
	case "gzip":
		s.gzip = true
	default:
		add("compression", fmt.Errorf("unknown compression %q (want \"gzip\" or \"none\")", cfg.Compression))
	}
	s.level = cfg.Level
	if s.level < 1 || s.level > 9 {
		add("level", fmt.Errorf("gzip level %d out of range (want 1 to 9)", cfg.Level))
	}

	s.maxBody = defaultMaxBody
	if mb := strings.TrimSpace(cfg.MaxBodyBytes); mb != "" {
		n, err := conf.ParseSize(mb)
		switch {
		case err != nil:
			add("max_body_bytes", err)
		case n < 1:
			add("max_body_bytes", fmt.Errorf("must be at least 1 byte, got %q", cfg.MaxBodyBytes))
		case n > maxBodyLimit:
			add("max_body_bytes", fmt.Errorf("%q is more than the limit of 1GiB", cfg.MaxBodyBytes))
		default:
			s.maxBody = int(n)
		}
	}

	s.maxInFlight = cfg.MaxInFlight
	if s.maxInFlight < 1 || s.maxInFlight > maxInFlightLimit {
		add("max_in_flight", fmt.Errorf("must be between 1 and %d, got %d", maxInFlightLimit, cfg.MaxInFlight))
	}

	if cfg.DeadLetterFile != "" {
		s.deadLetter = cfg.DeadLetterFile
		if st, err := os.Stat(cfg.DeadLetterFile); err == nil && st.IsDir() {
			add("dead_letter_file", fmt.Errorf("%q is a directory", cfg.DeadLetterFile))
		}
	}

	errs = append(errs, s.parseHeaders(cfg)...)

	if cfg.TLS != nil {
		var terrs []error
		s.tls, terrs = cfg.TLS.Build("tls.", onReloadError)
		errs = append(errs, terrs...)
		s.insecure = cfg.TLS.InsecureSkipVerify
	}
	return s, errors.Join(errs...)
}

func parseURL(raw string) (*url.URL, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, errors.New("must not be empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("unsupported URL scheme %q in %q (want \"http\" or \"https\")", u.Scheme, raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("URL %q has no host", raw)
	}
	if u.User != nil {
		return nil, errors.New("credentials in the URL would appear in logs; use a basic_auth block")
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("URL %q has a fragment (#…), which is never sent", raw)
	}
	return u, nil
}

// managedHeaders are set by the output itself.
var managedHeaders = map[string]string{
	"Content-Length":    "it is computed for each request",
	"Transfer-Encoding": "bodies are sent with a Content-Length",
	"Content-Encoding":  "it follows compression",
}

// parseHeaders builds s.header from headers, bearer_token and basic_auth.
func (s *settings) parseHeaders(cfg *Config) []error {
	var errs []error
	h := http.Header{}
	h.Set("User-Agent", "sluice")
	switch s.enc {
	case encNDJSON:
		h.Set("Content-Type", "application/x-ndjson")
	default:
		h.Set("Content-Type", "application/json")
	}
	if s.gzip {
		h.Set("Content-Encoding", "gzip")
	}
	hasAuth := false
	seen := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Headers)) {
		value := cfg.Headers[name]
		if !validHeaderName(name) {
			errs = append(errs, conf.Field("headers", fmt.Errorf("header name %q is not a valid HTTP token", name)))
			continue
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			errs = append(errs, conf.Field("headers", fmt.Errorf("header %q: value contains a line break or NUL", name)))
			continue
		}
		canon := http.CanonicalHeaderKey(name)
		if prev, dup := seen[canon]; dup {
			errs = append(errs, conf.Field("headers", fmt.Errorf("header %q is set twice (as %q and %q)", canon, prev, name)))
			continue
		}
		seen[canon] = name
		if why, ok := managedHeaders[canon]; ok {
			errs = append(errs, conf.Field("headers", fmt.Errorf("header %q cannot be set: %s", name, why)))
			continue
		}
		switch canon {
		case "Host":
			s.host = value
			continue
		case "Authorization":
			hasAuth = true
		}
		h.Set(canon, value)
	}
	if cfg.BearerToken != "" {
		switch {
		case cfg.BasicAuth != nil:
			errs = append(errs, conf.Field("bearer_token", errors.New("bearer_token and basic_auth are mutually exclusive")))
		case hasAuth:
			errs = append(errs, conf.Field("bearer_token", errors.New("bearer_token and an Authorization header are mutually exclusive")))
		case strings.ContainsAny(cfg.BearerToken, "\r\n\x00"):
			errs = append(errs, conf.Field("bearer_token", errors.New("contains a line break or NUL")))
		default:
			h.Set("Authorization", "Bearer "+cfg.BearerToken)
		}
	}
	if ba := cfg.BasicAuth; ba != nil {
		switch {
		case hasAuth:
			errs = append(errs, conf.Field("basic_auth.username", errors.New("basic_auth and an Authorization header are mutually exclusive")))
		case ba.Username == "":
			errs = append(errs, conf.Field("basic_auth.username", errors.New("must not be empty")))
		case strings.Contains(ba.Username, ":"):
			errs = append(errs, conf.Field("basic_auth.username", errors.New("must not contain \":\" (RFC 7617)")))
		default:
			r := &http.Request{Header: http.Header{}}
			r.SetBasicAuth(ba.Username, ba.Password)
			h.Set("Authorization", r.Header.Get("Authorization"))
		}
	}
	s.header = h
	return errs
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// New validates cfg and returns the http output. It reads the TLS files but
// has no other side effects: the dead-letter file is opened by Open and
// connections are made by Write. Config errors are *conf.FieldError values
// joined with errors.Join. insecure_skip_verify is logged as a warning.
func New(cfg *Config, env outputs.Env) (outputs.Output, error) {
	log := env.Logger
	if log == nil {
		log = discardLogger()
	}
	s, err := parseConfig(cfg, func(err error) { log.Error("TLS file reload failed", "err", err) })
	if err != nil {
		return nil, err
	}
	o := newOutput(s, env)
	if s.insecure {
		o.log.Warn("tls.insecure_skip_verify is set: the server's certificate is not verified, so anyone on the path can read and alter what this output sends",
			"url", s.logURL)
	}
	return o, nil
}

// jsonFormat encodes events for ndjson, json_array and HEC event = "json".
const jsonFormat = format.JSON

// discardLogger is used when env.Logger is nil.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
