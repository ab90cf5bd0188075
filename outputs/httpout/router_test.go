package httpout_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/inputs"
	syslogin "github.com/sluicelog/sluice/inputs/syslog"
	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/outputs/httpout"
	"github.com/sluicelog/sluice/router"
)

// collector is an HTTP server that accepts NDJSON (gzip or not) after an
// outage of `down` requests answered 503, and records each event's message
// in arrival order.
type collector struct {
	mu       sync.Mutex
	down     int
	requests int
	messages []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Token") != "t0k3n" { // set with env() in the config
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		body = zr
	}
	var msgs []string
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		var ev struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		msgs = append(msgs, ev.Message)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	if c.requests <= c.down {
		w.Header().Set("Retry-After", "0")
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	c.messages = append(c.messages, msgs...)
}

func (c *collector) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.messages...)
}

// Syslog over TCP → router → http output, through a server outage: every
// event arrives once, in order, and the router counts the retries.
func TestRouterEndToEndThroughOutage(t *testing.T) {
	col := &collector{down: 5}
	srv := httptest.NewServer(col)
	defer srv.Close()

	src := fmt.Sprintf(`
data_dir = %q
input "syslog" "in" {
  listen = ["tcp://127.0.0.1:0"]
}
output "http" "collector" {
  url            = "%s/ingest"
  compression    = "gzip"
  max_body_bytes = "16KiB"
  headers        = { X-Token = env("SLUICE_TEST_UNSET_TOKEN", "t0k3n") }
  queue {
    type = "memory"
  }
  batch {
    max_events = 200
    max_wait   = "5ms"
  }
  retry {
    initial = "5ms"
    max     = "20ms"
  }
}
route "all" {
  to = [output.http.collector]
}
`, t.TempDir(), srv.URL)
	reg := router.Registry{
		Inputs:  map[string]inputs.Type{"syslog": inputs.NewType(syslogin.DefaultConfig, syslogin.New)},
		Outputs: map[string]outputs.Type{"http": outputs.NewType(httpout.DefaultConfig, httpout.New)},
	}
	cfg, diags := router.Load("e2e.hcl", []byte(src), reg)
	if diags.HasErrors() {
		var b strings.Builder
		router.WriteDiagnostics(&b, cfg.Files, diags)
		t.Fatalf("config:\n%s", b.String())
	}
	promReg := prometheus.NewRegistry()
	r := router.New(cfg, router.Options{Registry: promReg})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return")
		}
	}()
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("router not ready")
	}
	addr := cfg.Inputs[0].Input.(*syslogin.Input).Addrs()[0]

	const n = 2000
	var payload bytes.Buffer
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprintf("event %05d from the e2e test", i)
		fmt.Fprintf(&payload, "<134>1 2026-11-22T10:00:00.%06dZ web-1 app %d - - %s\n", i, i, want[i])
	}
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(payload.Bytes()); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	deadline := time.Now().Add(20 * time.Second)
	for len(col.got()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := col.got()
	if len(got) != n {
		t.Fatalf("collector got %d events; want %d", len(got), n)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("event %d = %q; want %q (order or content differs)", i, got[i], want[i])
		}
	}
	// The collector has every event once the last response is written; the
	// worker counts the batch as sent a moment later, after the response.
	sent := `sluice_output_sent_events_total{output="collector"}`
	for deadline := time.Now().Add(5 * time.Second); scrape(t, promReg, sent) < n && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	for metric, min := range map[string]float64{
		sent: n,
		`sluice_output_retries_total{output="collector"}`:            5,
		`sluice_http_retries_total{output="collector"}`:              5,
		`sluice_http_requests_total{class="5xx",output="collector"}`: 5,
	} {
		if v := scrape(t, promReg, metric); v < min {
			t.Errorf("%s = %v; want >= %v", metric, v, min)
		}
	}
}

// scrape returns the value of one series, written as in the text format.
func scrape(t *testing.T, reg *prometheus.Registry, series string) float64 {
	t.Helper()
	name := series[:strings.IndexByte(series, '{')]
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if name+"{"+strings.Join(labels, ",")+"}" == series {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}
