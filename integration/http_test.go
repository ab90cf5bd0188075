//go:build integration

package integration

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// scriptedSink is an NDJSON endpoint whose answer to each request is chosen
// by a function of the request number and the events' messages; it records
// the messages of the requests it answered 200, in order.
type scriptedSink struct {
	mu       sync.Mutex
	answer   func(n int, msgs []string) int // status; 0 = drop the connection
	requests int
	accepted []string
	gzipped  int
}

func (s *scriptedSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	gz := r.Header.Get("Content-Encoding") == "gzip"
	if gz {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	var msgs []string
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		msgs = append(msgs, ev.Message)
	}
	s.mu.Lock()
	s.requests++
	status := s.answer(s.requests, msgs)
	if status == 200 {
		s.accepted = append(s.accepted, msgs...)
		if gz {
			s.gzipped++
		}
	}
	s.mu.Unlock()
	if status == 0 {
		if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "0")
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "status %d", status)
}

func (s *scriptedSink) snapshot() (accepted []string, gzipped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.accepted...), s.gzipped
}

func httpOutputConfig(port int, url, extra string) string {
	return withPort(fmt.Sprintf(`
shutdown_timeout = "2s"
admin {
  listen = "%%ADMIN%%"
}
input "syslog" "in" {
  listen = ["tcp://127.0.0.1:%%PORT%%"]
}
output "http" "siem" {
  url         = %q
  compression = "gzip"
  headers     = { X-Api-Key = env("SLUICE_IT_UNSET_KEY", "k3y") }
%s
  queue {
    type = "memory"
  }
  retry {
    initial = "20ms"
    max     = "200ms"
  }
}
route "all" {
  to = [output.http.siem]
}
`, url, extra), port)
}

// logger → sluice → http output through an outage (503s, 429, a dropped
// connection): every event arrives once, in order, gzip-compressed, and
// the retries are counted.
func TestHTTPOutputOutageThenInOrder(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	sink := &scriptedSink{answer: func(n int, _ []string) int {
		switch {
		case n <= 3:
			return http.StatusServiceUnavailable
		case n == 4:
			return http.StatusTooManyRequests
		case n == 5:
			return 0
		}
		return http.StatusOK
	}}
	var keyOK sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "k3y" {
			keyOK.Do(func() { t.Errorf("X-Api-Key = %q", r.Header.Get("X-Api-Key")) })
		}
		sink.ServeHTTP(w, r)
	}))
	defer srv.Close()
	d := startDaemon(t, dir, httpOutputConfig(port, srv.URL+"/ingest", `
  max_body_bytes = "16KiB"
  batch {
    max_events = 100
    max_wait   = "10ms"
  }`))

	const n = 500
	logger(t, port, "--tcp", "--octet-count", "--rfc5424", "-t", "app", "-f", writeMessages(t, dir, n, "http"))
	d.waitMetric(`sluice_output_sent_events_total{output="siem"}`, n)
	d.stop()

	got, gzipped := sink.snapshot()
	if len(got) != n {
		t.Fatalf("sink accepted %d events; want %d exactly once", len(got), n)
	}
	for i, m := range got {
		if want := fmt.Sprintf("http message %04d with some payload [x=%d]", i, i*7); m != want {
			t.Fatalf("event %d = %q; want %q (order)", i, m, want)
		}
	}
	if gzipped == 0 {
		t.Error("no request was gzip-compressed")
	}
	logs := d.logs()
	for _, want := range []string{"503 Service Unavailable", "429 Too Many Requests", "EOF"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not mention %q", want)
		}
	}
}

// A request the server rejects (400) is written to the dead-letter file,
// counted as dropped, and the events around it still arrive.
func TestHTTPOutputDeadLetter(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	sink := &scriptedSink{answer: func(_ int, msgs []string) int {
		for _, m := range msgs {
			if strings.Contains(m, "0004") {
				return http.StatusBadRequest
			}
		}
		return http.StatusOK
	}}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	d := startDaemon(t, dir, httpOutputConfig(port, srv.URL+"/ingest", `
  dead_letter_file = "dead/siem.jsonl"
  batch {
    max_events = 1
    max_wait   = "1ms"
  }`))

	logger(t, port, "--tcp", "--octet-count", "--rfc5424", "-t", "app", "-f", writeMessages(t, dir, 10, "dl"))
	d.waitMetric(`sluice_output_sent_events_total{output="siem"}`, 9)
	d.waitMetric(`sluice_output_dropped_events_total{output="siem",reason="permanent"}`, 1)
	if v := d.metric(`sluice_http_dead_lettered_events_total{output="siem"}`); v != 1 {
		t.Errorf("sluice_http_dead_lettered_events_total = %v; want 1", v)
	}
	d.stop()

	got, _ := sink.snapshot()
	if len(got) != 9 {
		t.Fatalf("sink accepted %d events; want 9", len(got))
	}
	b, err := os.ReadFile(filepath.Join(dir, "dead/siem.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var dl struct {
		Output   string `json:"output"`
		Status   int    `json:"status"`
		Response string `json:"response"`
		Event    struct {
			Message string `json:"message"`
			App     string `json:"app"`
		} `json:"event"`
	}
	if err := json.Unmarshal(b, &dl); err != nil {
		t.Fatalf("dead-letter file %q: %v", b, err)
	}
	if dl.Output != "siem" || dl.Status != 400 || dl.Response != "status 400" || dl.Event.App != "app" ||
		dl.Event.Message != "dl message 0004 with some payload [x=28]" {
		t.Errorf("dead letter: %+v", dl)
	}
	if !strings.Contains(d.logs(), "written to the dead-letter file") {
		t.Error("the rejection was not logged")
	}
}
