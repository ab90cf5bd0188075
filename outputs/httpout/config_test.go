package httpout

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/router/event"
)

// Every bad value is a *conf.FieldError naming its attribute, with a
// precise message; several are reported together.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	os.WriteFile(notPEM, []byte("hello"), 0o644)
	cases := []struct {
		name  string
		mod   func(*Config)
		field string
		msg   string
	}{
		{"empty url", func(c *Config) { c.URL = "" }, "url", "must not be empty"},
		{"bad scheme", func(c *Config) { c.URL = "ftp://x/y" }, "url", `unsupported URL scheme "ftp"`},
		{"no scheme", func(c *Config) { c.URL = "collector:8080/in" }, "url", "unsupported URL scheme"},
		{"no host", func(c *Config) { c.URL = "http:///in" }, "url", "has no host"},
		{"unparsable", func(c *Config) { c.URL = "http://a b/" }, "url", "invalid URL"},
		{"credentials", func(c *Config) { c.URL = "https://u:p@x/" }, "url", "use a basic_auth block"},
		{"tls on http", func(c *Config) { c.URL = "http://x/"; c.TLS = &TLSConfig{} }, "url", "a tls block needs an https:// URL"},
		{"method", func(c *Config) { c.Method = "GET" }, "method", `unsupported method "GET"`},
		{"timeout", func(c *Config) { c.Timeout = "soon" }, "timeout", `invalid duration "soon"`},
		{"zero timeout", func(c *Config) { c.Timeout = "0s" }, "timeout", "must be greater than 0"},
		{"encoding", func(c *Config) { c.Encoding = "xml" }, "encoding", `unknown encoding "xml" (want "ndjson", "json_array" or "splunk_hec")`},
		{"hec block without hec", func(c *Config) { c.SplunkHEC = &HECConfig{} }, "encoding", "a splunk_hec block needs encoding"},
		{"hec template", func(c *Config) { c.Encoding = "splunk_hec"; c.SplunkHEC = &HECConfig{Source: "{appname}"} }, "splunk_hec.source", "unknown field {appname}"},
		{"hec brace", func(c *Config) { c.Encoding = "splunk_hec"; c.SplunkHEC = &HECConfig{Index: "logs-{host"} }, "splunk_hec.index", `unterminated "{"`},
		{"hec event", func(c *Config) { c.Encoding = "splunk_hec"; c.SplunkHEC = &HECConfig{Event: "xml"} }, "splunk_hec.event", `unknown event "xml"`},
		{"compression", func(c *Config) { c.Compression = "zstd" }, "compression", `unknown compression "zstd"`},
		{"level", func(c *Config) { c.Level = 12 }, "level", "gzip level 12 out of range"},
		{"max_body_bytes", func(c *Config) { c.MaxBodyBytes = "lots" }, "max_body_bytes", `invalid size "lots"`},
		{"max_body_bytes zero", func(c *Config) { c.MaxBodyBytes = "0" }, "max_body_bytes", "must be at least 1 byte"},
		{"max_body_bytes huge", func(c *Config) { c.MaxBodyBytes = "2GiB" }, "max_body_bytes", "more than the limit of 1GiB"},
		{"negative max_in_flight", func(c *Config) { c.MaxInFlight = -1 }, "max_in_flight", "must be between 1 and 64, got -1"},
		{"max_in_flight too many", func(c *Config) { c.MaxInFlight = 1000 }, "max_in_flight", "must be between 1 and 64, got 1000"},
		{"dead letter dir", func(c *Config) { c.DeadLetterFile = dir }, "dead_letter_file", "is a directory"},
		{"header name", func(c *Config) { c.Headers = map[string]string{"X Bad": "1"} }, "headers", `header name "X Bad" is not a valid HTTP token`},
		{"header value", func(c *Config) { c.Headers = map[string]string{"X-A": "1\r\nX-B: 2"} }, "headers", "line break"},
		{"header twice", func(c *Config) { c.Headers = map[string]string{"x-a": "1", "X-A": "2"} }, "headers", `header "X-A" is set twice`},
		{"level zero", func(c *Config) { c.Level = 0 }, "level", "gzip level 0 out of range"},
		{"managed header", func(c *Config) { c.Headers = map[string]string{"content-length": "5"} }, "headers", `header "content-length" cannot be set`},
		{"bearer and basic", func(c *Config) { c.BearerToken = "t"; c.BasicAuth = &BasicAuthConfig{Username: "u"} }, "bearer_token", "mutually exclusive"},
		{"bearer and header", func(c *Config) { c.BearerToken = "t"; c.Headers = map[string]string{"Authorization": "x"} }, "bearer_token", "mutually exclusive"},
		{"basic empty user", func(c *Config) { c.BasicAuth = &BasicAuthConfig{} }, "basic_auth.username", "must not be empty"},
		{"basic colon", func(c *Config) { c.BasicAuth = &BasicAuthConfig{Username: "a:b"} }, "basic_auth.username", `must not contain ":"`},
		{"unreadable ca", func(c *Config) { c.TLS = &TLSConfig{CAFile: filepath.Join(dir, "missing.pem")} }, "tls.ca_file", "cannot read CA file"},
		{"ca not pem", func(c *Config) { c.TLS = &TLSConfig{CAFile: notPEM} }, "tls.ca_file", "no PEM certificate found"},
		{"cert without key", func(c *Config) { c.TLS = &TLSConfig{CertFile: notPEM} }, "tls.cert_file", "cert_file needs key_file"},
		{"key without cert", func(c *Config) { c.TLS = &TLSConfig{KeyFile: notPEM} }, "tls.key_file", "key_file needs cert_file"},
		{"bad key pair", func(c *Config) { c.TLS = &TLSConfig{CertFile: notPEM, KeyFile: notPEM} }, "tls.cert_file", "cannot load client certificate and key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.URL = "https://collector.example/in"
			tc.mod(cfg)
			_, err := New(cfg, outputs.Env{Name: "x"})
			var fe *conf.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("New = %v; want a FieldError", err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Err.Error(), tc.msg) {
				t.Fatalf("got %s: %v; want %s: …%s…", fe.Field, fe.Err, tc.field, tc.msg)
			}
		})
	}

	cfg := DefaultConfig()
	cfg.URL, cfg.Encoding, cfg.MaxInFlight = "gopher://x", "csv", 0
	_, err := New(cfg, outputs.Env{})
	j, ok := err.(interface{ Unwrap() []error })
	if !ok || len(j.Unwrap()) != 3 {
		t.Fatalf("want 3 joined errors, got %v", err)
	}
}

func TestDefaultsAndValidConfig(t *testing.T) {
	var logs bytes.Buffer
	cfg := DefaultConfig()
	cfg.URL = "https://hec.example:8088/services/collector/event?channel=x"
	cfg.Encoding = "splunk_hec"
	cfg.Headers = map[string]string{"Authorization": "Splunk token"}
	cfg.TLS = &TLSConfig{InsecureSkipVerify: true}
	out, err := New(cfg, outputs.Env{Name: "hec", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	o := out.(*output)
	if o.s.method != "POST" || o.s.timeout != 30*time.Second || o.s.maxBody != 4<<20 || o.s.maxInFlight != 1 || o.s.gzip {
		t.Errorf("defaults: %+v", o.s)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "insecure_skip_verify") {
		t.Errorf("no warning for insecure_skip_verify: %s", logs.String())
	}
	if strings.Contains(logs.String(), "channel=x") {
		t.Errorf("the query string was logged: %s", logs.String())
	}
	if got := o.tr.MaxIdleConnsPerHost; got < o.s.maxInFlight {
		t.Errorf("MaxIdleConnsPerHost %d < max_in_flight", got)
	}
}

func TestHECEnvelope(t *testing.T) {
	ev := &event.Event{
		Time: time.Date(2026, 3, 1, 12, 0, 0, 987654321, time.UTC), Host: "web-1", App: "nginx", Stream: "access",
		Facility: 16, Severity: 3, Message: "GET /", Raw: []byte("<131>1 - web-1 nginx - - - GET /\xff"),
	}
	for _, tc := range []struct {
		hec  HECConfig
		want map[string]any
	}{
		{HECConfig{}, map[string]any{"time": 1772366400.987, "host": "web-1", "source": "nginx", "sourcetype": "syslog",
			"event": "<131>1 - web-1 nginx - - - GET /\uFFFD"}},
		{HECConfig{Host: "fixed", Source: "{stream}:{app}", Sourcetype: "{facility}.{severity}", Index: "idx-{stream}", Event: "message"},
			map[string]any{"time": 1772366400.987, "host": "fixed", "source": "access:nginx", "sourcetype": "local0.err", "index": "idx-access", "event": "GET /"}},
		{HECConfig{Source: "{procid}", Event: "json"}, // empty renders are left out
			map[string]any{"time": 1772366400.987, "host": "web-1", "sourcetype": "syslog"}},
	} {
		h, errs := parseHEC(&tc.hec)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		b, _ := h.appendHEC(nil, nil, ev)
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if tc.hec.Event == "json" {
			obj, ok := got["event"].(map[string]any)
			if !ok || obj["message"] != "GET /" {
				t.Errorf("event = %v; want the JSON object", got["event"])
			}
			delete(got, "event")
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: keys differ from %v", b, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s = %v; want %v", b, k, got[k], v)
			}
		}
	}
}
