package httpout

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/router/event"
)

var bg = context.Background()

// Every encoding, with and without gzip: one request, every event exactly
// as sent, in order, with the right headers.
func TestWriteEncodings(t *testing.T) {
	for _, enc := range []string{"ndjson", "json_array", "splunk_hec"} {
		for _, comp := range []string{"none", "gzip"} {
			t.Run(enc+"/"+comp, func(t *testing.T) {
				s := newSink(t, encodingOf(enc))
				o := newTestOutput(t, s.srv.URL+"/ingest?x=1", func(c *Config) {
					c.Encoding, c.Compression = enc, comp
					c.Headers = map[string]string{"X-Tenant": "blue", "host": "logs.example"}
					c.BearerToken = "s3cret"
				})
				evs := mkEvents(200)
				if err := o.Write(bg, evs); err != nil {
					t.Fatal(err)
				}
				s.checkEvents(evs)
				reqs := s.requests()
				if len(reqs) != 1 {
					t.Fatalf("%d requests; want 1", len(reqs))
				}
				h := reqs[0].header
				wantCT := map[string]string{"ndjson": "application/x-ndjson", "json_array": "application/json", "splunk_hec": "application/json"}[enc]
				wantCE := map[string]string{"none": "", "gzip": "gzip"}[comp]
				for k, want := range map[string]string{"Content-Type": wantCT, "Content-Encoding": wantCE,
					"Authorization": "Bearer s3cret", "X-Tenant": "blue", "User-Agent": "sluice"} {
					if got := h.Get(k); got != want {
						t.Errorf("header %s = %q; want %q", k, got, want)
					}
				}
				if reqs[0].method != http.MethodPost {
					t.Errorf("method %s", reqs[0].method)
				}
				if got := testutil.ToFloat64(o.m.sentBytes); got != float64(reqs[0].raw) {
					t.Errorf("sent_bytes_total = %v; the sink read %d", got, reqs[0].raw)
				}
			})
		}
	}
}

func TestBasicAuthPutAndHost(t *testing.T) {
	var got *http.Request
	srv := newSink(t, encNDJSON)
	srv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Clone(bg) })
	o := newTestOutput(t, srv.srv.URL, func(c *Config) {
		c.Method = "put"
		c.BasicAuth = &BasicAuthConfig{Username: "u", Password: "p:w"}
		c.Headers = map[string]string{"Host": "virtual.example", "Content-Type": "text/plain"}
	})
	if err := o.Write(bg, mkEvents(3)); err != nil {
		t.Fatal(err)
	}
	u, p, ok := got.BasicAuth()
	if !ok || u != "u" || p != "p:w" || got.Method != "PUT" || got.Host != "virtual.example" || got.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("request: auth %q %q %v, method %s, host %s, type %s", u, p, ok, got.Method, got.Host, got.Header.Get("Content-Type"))
	}
}

// A batch larger than max_body_bytes goes as several requests, each within
// the limit, in order; an event larger than the limit goes alone.
func TestSplitByMaxBodyBytes(t *testing.T) {
	for _, enc := range []string{"ndjson", "json_array"} {
		t.Run(enc, func(t *testing.T) {
			s := newSink(t, encodingOf(enc))
			o := newTestOutput(t, s.srv.URL, func(c *Config) { c.Encoding, c.MaxBodyBytes = enc, "4KiB" })
			evs := mkEvents(100)
			evs[50].Message = strings.Repeat("big ", 2000) // alone: larger than the limit
			if err := o.Write(bg, evs); err != nil {
				t.Fatal(err)
			}
			s.checkEvents(evs)
			reqs := s.requests()
			if len(reqs) < 10 {
				t.Fatalf("%d requests; want many", len(reqs))
			}
			for _, r := range reqs {
				if r.raw > 4096 && len(r.items) > 1 {
					t.Errorf("a request of %d events has %d bytes > max_body_bytes", len(r.items), r.raw)
				}
			}
			if s.conns.Load() != 1 {
				t.Errorf("%d connections; want 1 reused", s.conns.Load())
			}
		})
	}
}

// Retryable outcomes: Write fails retryably (with the delay Retry-After
// asked for), then the same batch is delivered once, in order.
func TestRetryableOutcomes(t *testing.T) {
	date := time.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat) // whole seconds
	cases := []struct {
		name      string
		first     step
		wantAfter time.Duration // -1: no RetryAfterError
		wantMsg   string
	}{
		{"429 retry-after seconds", step{status: 429, header: map[string]string{"Retry-After": "7"}}, 7 * time.Second, "429 Too Many Requests"},
		{"503 retry-after date", step{status: 503, header: map[string]string{"Retry-After": date}}, 10 * time.Second, "503"},
		{"500", step{status: 500, body: "boom"}, -1, `500 Internal Server Error: "boom"`},
		{"408", step{status: 408}, -1, "408"},
		{"429 bad retry-after", step{status: 429, header: map[string]string{"Retry-After": "soon"}}, -1, "429"},
		{"302 not followed", step{status: 302, header: map[string]string{"Location": "/elsewhere"}}, -1, "redirect to /elsewhere not followed"},
		{"dropped connection", step{hijack: true}, -1, "EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink(t, encNDJSON, tc.first)
			o := newTestOutput(t, s.srv.URL, nil)
			evs := mkEvents(20)
			err := o.Write(bg, evs)
			if err == nil || errors.Is(err, outputs.ErrPermanent) {
				t.Fatalf("first Write = %v; want a retryable error", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q lacks %q", err, tc.wantMsg)
			}
			var ra *outputs.RetryAfterError
			switch {
			case tc.wantAfter < 0 && errors.As(err, &ra):
				t.Errorf("unexpected RetryAfterError %v", ra)
			case tc.wantAfter >= 0 && !errors.As(err, &ra):
				t.Errorf("error %v is not a RetryAfterError", err)
			case tc.wantAfter >= 0 && (ra.After > tc.wantAfter || ra.After < tc.wantAfter-3*time.Second):
				t.Errorf("RetryAfter = %v; want about %v", ra.After, tc.wantAfter)
			}
			if err := o.Write(bg, evs); err != nil {
				t.Fatalf("retry: %v", err)
			}
			s.checkEvents(evs)
			if got := testutil.ToFloat64(o.m.retries); got != 1 {
				t.Errorf("retries_total = %v; want 1", got)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false}, {"0", 0, true}, {"120", 2 * time.Minute, true}, {"-1", 0, false}, {"1.5", 0, false},
		{"Thu, 01 Jan 2026 00:00:30 GMT", 30 * time.Second, true},
		{"Wed, 31 Dec 2025 23:00:00 GMT", 0, true}, // in the past
		{"tomorrow", 0, false},
		{"99999999", 24 * time.Hour, true},
	} {
		got, ok := parseRetryAfter(tc.v, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

// A failure in the middle of a split batch: the retry resends only what
// was not accepted, so the server gets every event once, in order.
func TestRetryResumesAfterAcceptedRequests(t *testing.T) {
	s := newSink(t, encNDJSON, step{status: 200}, step{status: 200}, step{status: 500}, step{status: 503})
	o := newTestOutput(t, s.srv.URL, func(c *Config) { c.MaxBodyBytes = "8KiB" })
	evs := mkEvents(100)
	for i := range 2 {
		if err := o.Write(bg, evs); err == nil || !strings.Contains(err.Error(), "settled") {
			t.Fatalf("attempt %d = %v; want a retryable error", i, err)
		}
		if n := len(s.requests()); n != 3+i {
			t.Fatalf("attempt %d: %d requests in all; want %d (nothing after a failure)", i, n, 3+i)
		}
	}
	if err := o.Write(bg, evs); err != nil {
		t.Fatal(err)
	}
	s.checkEvents(evs)
	// A different batch afterwards starts afresh.
	evs2 := mkEvents(10)
	if err := o.Write(bg, evs2); err != nil {
		t.Fatal(err)
	}
	if got := s.acceptedItems(); len(got) != 110 {
		t.Fatalf("%d events accepted; want 110", len(got))
	}
}

// Other 4xx: the events go to the dead-letter file (event as encoded,
// status, response cut to 1 KiB) and Write reports them permanently.
func TestRejectedEventsAreDeadLettered(t *testing.T) {
	for _, enc := range []string{"ndjson", "splunk_hec"} {
		t.Run(enc, func(t *testing.T) {
			long := strings.Repeat("é", 1000) // 2000 bytes: cut inside a rune
			s := newSink(t, encodingOf(enc), step{status: 400, body: long})
			dl := filepath.Join(t.TempDir(), "sub", "dead.jsonl")
			o := newTestOutput(t, s.srv.URL, func(c *Config) { c.Encoding, c.DeadLetterFile = enc, dl })
			evs := mkEvents(5)
			err := o.Write(bg, evs)
			if !errors.Is(err, outputs.ErrPermanent) {
				t.Fatalf("Write = %v; want ErrPermanent", err)
			}
			var pe *outputs.PartialError
			if errors.As(err, &pe) {
				t.Fatalf("whole batch rejected, but got a PartialError")
			}
			lines := readLines(t, dl)
			if len(lines) != 5 {
				t.Fatalf("%d dead letters; want 5", len(lines))
			}
			sent := s.requests()[0].items
			for i, l := range lines {
				var d struct {
					Time     time.Time       `json:"time"`
					Output   string          `json:"output"`
					Status   int             `json:"status"`
					Response string          `json:"response"`
					Event    json.RawMessage `json:"event"`
				}
				if err := json.Unmarshal([]byte(l), &d); err != nil {
					t.Fatalf("dead letter %q: %v", l, err)
				}
				if d.Status != 400 || d.Output != "test" || time.Since(d.Time) > time.Minute {
					t.Errorf("dead letter %d: %+v", i, d)
				}
				if !strings.HasPrefix(long, strings.TrimSuffix(d.Response, "\uFFFD")) || len(d.Response) < 1000 || len(d.Response) > 1030 {
					t.Errorf("response kept: %d bytes", len(d.Response))
				}
				if string(d.Event) != string(sent[i]) {
					t.Errorf("dead letter %d event:\n got %s\nwant %s", i, d.Event, sent[i])
				}
				checkItem(t, encodingOf(enc), d.Event, evs[i])
			}
			if got := testutil.ToFloat64(o.m.deadLettered); got != 5 {
				t.Errorf("dead_lettered_events_total = %v", got)
			}
			if got := testutil.ToFloat64(o.m.byClass[class4xx]); got != 1 {
				t.Errorf("requests_total{class=4xx} = %v", got)
			}
		})
	}
}

// Some requests rejected, others accepted: a PartialError naming the
// rejected count; without a dead-letter file they are only counted.
func TestPartialRejectionWithoutDeadLetter(t *testing.T) {
	s := newSink(t, encNDJSON, step{status: 200}, step{status: 422, body: "bad field"}, step{status: 200})
	o := newTestOutput(t, s.srv.URL, func(c *Config) { c.MaxBodyBytes = "8KiB" })
	evs := mkEvents(60)
	err := o.Write(bg, evs)
	var pe *outputs.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("Write = %v; want a PartialError", err)
	}
	reqs := s.requests()
	if pe.Rejected != len(reqs[1].items) || !strings.Contains(pe.Error(), "422") || !strings.Contains(pe.Error(), "bad field") {
		t.Fatalf("PartialError %v; second request had %d events", pe, len(reqs[1].items))
	}
	if got := testutil.ToFloat64(o.m.rejected); got != float64(pe.Rejected) {
		t.Errorf("rejected_events_total = %v", got)
	}
	if n := len(s.acceptedItems()) + pe.Rejected; n != 60 {
		t.Errorf("accepted + rejected = %d; want 60", n)
	}
}

// A rejection and a retryable failure in one Write: the retry sends only
// the failed request's events, and the final result still reports the
// rejected ones (dead-lettered once).
func TestRejectionThenRetry(t *testing.T) {
	s := newSink(t, encNDJSON, step{status: 400}, step{status: 500})
	dl := filepath.Join(t.TempDir(), "dead.jsonl")
	o := newTestOutput(t, s.srv.URL, func(c *Config) { c.MaxBodyBytes = "8KiB"; c.DeadLetterFile = dl })
	evs := mkEvents(40)
	if err := o.Write(bg, evs); err == nil || errors.Is(err, outputs.ErrPermanent) {
		t.Fatalf("first Write = %v; want retryable", err)
	}
	err := o.Write(bg, evs)
	var pe *outputs.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("second Write = %v; want a PartialError", err)
	}
	reqs := s.requests()
	if pe.Rejected != len(reqs[0].items) || len(readLines(t, dl)) != pe.Rejected {
		t.Fatalf("rejected %d, first request %d events, %d dead letters", pe.Rejected, len(reqs[0].items), len(readLines(t, dl)))
	}
	if n := len(s.acceptedItems()); n != 40-pe.Rejected {
		t.Fatalf("%d accepted", n)
	}
}

// An unwritable dead-letter file keeps the events queued (retryable).
func TestDeadLetterUnwritableIsRetryable(t *testing.T) {
	s := newSink(t, encNDJSON, step{status: 400}, step{status: 400})
	dir := t.TempDir()
	dl := filepath.Join(dir, "dead.jsonl")
	o := newTestOutput(t, s.srv.URL, func(c *Config) { c.DeadLetterFile = dl })
	o.dl.close()
	os.Remove(dl)
	os.Mkdir(dl, 0o755) // now a directory: opening it for writing fails
	evs := mkEvents(3)
	err := o.Write(bg, evs)
	if err == nil || errors.Is(err, outputs.ErrPermanent) || !strings.Contains(err.Error(), "not dead-lettered") {
		t.Fatalf("Write = %v; want retryable", err)
	}
	os.Remove(dl)
	if err := o.Write(bg, evs); !errors.Is(err, outputs.ErrPermanent) {
		t.Fatalf("Write = %v; want ErrPermanent once the file can be written", err)
	}
	if n := len(readLines(t, dl)); n != 3 {
		t.Fatalf("%d dead letters; want 3", n)
	}
}

// 413 halves the request recursively; a single event still too large is
// rejected on its own; everything else arrives in order.
func Test413SplitsInHalves(t *testing.T) {
	s := newSink(t, encNDJSON)
	s.respond = func(items [][]byte) step {
		if len(items) > 7 {
			return step{status: 413}
		}
		for _, it := range items {
			if strings.Contains(string(it), "HUGE") {
				return step{status: 413, body: "too large"}
			}
		}
		return step{status: 200}
	}
	dl := filepath.Join(t.TempDir(), "dead.jsonl")
	o := newTestOutput(t, s.srv.URL, func(c *Config) { c.DeadLetterFile = dl })
	evs := mkEvents(50)
	evs[33].Message = "HUGE"
	err := o.Write(bg, evs)
	var pe *outputs.PartialError
	if !errors.As(err, &pe) || pe.Rejected != 1 {
		t.Fatalf("Write = %v; want a PartialError of 1", err)
	}
	want := append(append([]*event.Event{}, evs[:33]...), evs[34:]...)
	s.checkEvents(want)
	lines := readLines(t, dl)
	if len(lines) != 1 || !strings.Contains(lines[0], `"status":413`) || !strings.Contains(lines[0], "HUGE") {
		t.Fatalf("dead letters: %q", lines)
	}
}

// A server slower than timeout: a retryable timeout error.
func TestTimeoutIsRetryable(t *testing.T) {
	s := newSink(t, encNDJSON, step{status: 200, delay: 5 * time.Second})
	o := newTestOutput(t, s.srv.URL, func(c *Config) { c.Timeout = "100ms" })
	evs := mkEvents(5)
	start := time.Now()
	err := o.Write(bg, evs)
	if err == nil || errors.Is(err, outputs.ErrPermanent) || !strings.Contains(err.Error(), "no response within timeout 100ms") {
		t.Fatalf("Write = %v; want a retryable timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Write took %v", d)
	}
	if err := o.Write(bg, evs); err != nil {
		t.Fatal(err)
	}
	// The slow request's events were "accepted" by the sink after the
	// client gave up (a lost response): at least once means they come twice.
	if got := len(s.acceptedItems()); got != 10 {
		t.Fatalf("%d events accepted; want 10 (5 duplicated by the timeout)", got)
	}
}

// Nobody listening: retryable.
func TestConnectionRefusedIsRetryable(t *testing.T) {
	s := newSink(t, encNDJSON)
	url := s.srv.URL
	s.srv.Close()
	o := newTestOutput(t, url, nil)
	err := o.Write(bg, mkEvents(2))
	if err == nil || errors.Is(err, outputs.ErrPermanent) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Write = %v; want connection refused, retryable", err)
	}
	if got := testutil.ToFloat64(o.m.byClass[classError]); got != 1 {
		t.Errorf("requests_total{class=error} = %v", got)
	}
}

// Forced shutdown: a cancelled ctx ends a hanging request at once.
func TestContextCancelEndsWrite(t *testing.T) {
	s := newSink(t, encNDJSON, step{status: 200, delay: 10 * time.Second})
	o := newTestOutput(t, s.srv.URL, nil)
	ctx, cancel := context.WithCancel(bg)
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	if err := o.Write(ctx, mkEvents(2)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write = %v; want context.Canceled", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Write took %v", d)
	}
}

// max_in_flight > 1 sends concurrently; every event arrives exactly once;
// after a failure only the unsettled requests are sent again.
func TestMaxInFlight(t *testing.T) {
	s := newSink(t, encNDJSON)
	var calls int
	s.respond = func(items [][]byte) step {
		calls++
		if calls == 5 {
			return step{status: 503, delay: 20 * time.Millisecond}
		}
		return step{status: 200, delay: 20 * time.Millisecond}
	}
	o := newTestOutput(t, s.srv.URL, func(c *Config) { c.MaxInFlight, c.MaxBodyBytes = 4, "4KiB" })
	evs := mkEvents(300)
	var err error
	for range 3 {
		if err = o.Write(bg, evs); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	got := s.acceptedItems()
	if len(got) != len(evs) {
		t.Fatalf("%d events accepted; want %d exactly once", len(got), len(evs))
	}
	seen := map[string]bool{}
	for _, it := range got {
		seen[string(it)] = true
	}
	for i, ev := range evs {
		if !seen[string(jsonFormat.Append(nil, ev))] {
			t.Fatalf("event %d missing", i)
		}
	}
	if p := s.peak.Load(); p < 2 || p > 4 {
		t.Errorf("peak concurrency %d; want 2..4", p)
	}
	if c := s.conns.Load(); c > 4 {
		t.Errorf("%d connections for max_in_flight 4", c)
	}
}

// Metrics carry output=<name>; two outputs register on one registry.
func TestMetricsRegister(t *testing.T) {
	s := newSink(t, encNDJSON, step{status: 500})
	reg := prometheus.NewRegistry()
	a := newTestOutput(t, s.srv.URL, nil)
	b := newTestOutput(t, s.srv.URL, nil)
	b.m = newMetrics("other")
	reg.MustRegister(a, b)
	evs := mkEvents(3)
	a.Write(bg, evs)
	if err := a.Write(bg, evs); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP sluice_http_requests_total HTTP requests by outcome: 2xx, 4xx, 5xx, or error (no response, or a 1xx/3xx).
# TYPE sluice_http_requests_total counter
sluice_http_requests_total{class="2xx",output="other"} 0
sluice_http_requests_total{class="2xx",output="test"} 1
sluice_http_requests_total{class="4xx",output="other"} 0
sluice_http_requests_total{class="4xx",output="test"} 0
sluice_http_requests_total{class="5xx",output="other"} 0
sluice_http_requests_total{class="5xx",output="test"} 1
sluice_http_requests_total{class="error",output="other"} 0
sluice_http_requests_total{class="error",output="test"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_http_requests_total"); err != nil {
		t.Fatal(err)
	}
	n, err := testutil.GatherAndCount(reg, "sluice_http_retries_total", "sluice_http_sent_bytes_total",
		"sluice_http_request_duration_seconds", "sluice_http_dead_lettered_events_total", "sluice_http_rejected_events_total")
	if err != nil || n != 10 {
		t.Fatalf("gathered %d series, %v; want 10", n, err)
	}
}

func TestWriteAfterClose(t *testing.T) {
	s := newSink(t, encNDJSON)
	o := newTestOutput(t, s.srv.URL, nil)
	o.Close()
	if err := o.Write(bg, mkEvents(1)); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
