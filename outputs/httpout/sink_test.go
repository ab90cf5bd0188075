package httpout

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/outputs/format"
	"github.com/sluicelog/sluice/router/event"
)

// step scripts one response of a sink.
type step struct {
	status int
	header map[string]string
	body   string
	delay  time.Duration // wait this long (or until the client gives up) before answering
	hijack bool          // close the connection without a response
}

// received is one request as the sink saw it.
type received struct {
	method string
	header http.Header
	raw    int      // body bytes on the wire
	items  [][]byte // the body's events (JSON values), decoded from its encoding
	status int      // what the sink answered (0: hijacked)
}

// sink is a loopback HTTP server that decodes every request body (gunzipping
// it when Content-Encoding says so), answers from a script (then 200), and
// records the items of accepted requests in arrival order.
type sink struct {
	t   *testing.T
	srv *httptest.Server
	enc encoding

	// respond, if set, chooses the response from the request's items;
	// otherwise the script is used.
	respond func(items [][]byte) step

	mu       sync.Mutex
	script   []step
	reqs     []received
	accepted [][]byte

	inFlight, peak atomic.Int32
	conns          atomic.Int32 // new connections
}

func newSink(t *testing.T, enc encoding, script ...step) *sink {
	t.Helper()
	s := &sink{t: t, enc: enc, script: script}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	body := raw
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			s.t.Errorf("sink: bad gzip: %v", err)
			http.Error(w, "bad gzip", 400)
			return
		}
		if body, err = io.ReadAll(zr); err != nil {
			s.t.Errorf("sink: bad gzip: %v", err)
			http.Error(w, "bad gzip", 400)
			return
		}
	}
	items, err := splitBody(s.enc, body)
	if err != nil {
		s.t.Errorf("sink: %v", err)
		http.Error(w, err.Error(), 400)
		return
	}
	st := step{status: 200}
	s.mu.Lock()
	if s.respond != nil {
		st = s.respond(items)
	} else if len(s.script) > 0 {
		st = s.script[0]
		s.script = s.script[1:]
	}
	s.mu.Unlock()
	if st.delay > 0 {
		select {
		case <-time.After(st.delay):
		case <-r.Context().Done():
		}
	}
	rec := received{method: r.Method, header: r.Header.Clone(), raw: len(raw), items: items, status: st.status}
	if st.hijack {
		rec.status = 0
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, rec)
	if st.status/100 == 2 && !st.hijack {
		s.accepted = append(s.accepted, items...)
	}
	s.mu.Unlock()
	if st.hijack {
		return
	}
	for k, v := range st.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(st.status)
	io.WriteString(w, st.body)
}

// splitBody returns the JSON values of a body.
func splitBody(enc encoding, body []byte) ([][]byte, error) {
	if enc == encJSONArray {
		var arr []json.RawMessage
		if err := json.Unmarshal(body, &arr); err != nil {
			return nil, fmt.Errorf("body is not a JSON array: %v: %q", err, body)
		}
		out := make([][]byte, len(arr))
		for i, a := range arr {
			out[i] = a
		}
		return out, nil
	}
	if len(body) == 0 || body[len(body)-1] != '\n' {
		return nil, fmt.Errorf("body does not end in a newline: %q", body)
	}
	var out [][]byte
	for _, l := range bytes.Split(body[:len(body)-1], []byte{'\n'}) {
		if !json.Valid(l) {
			return nil, fmt.Errorf("line is not JSON: %q", l)
		}
		out = append(out, l)
	}
	return out, nil
}

func (s *sink) requests() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.reqs...)
}

func (s *sink) acceptedItems() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.accepted...)
}

// checkEvents asserts that the sink accepted exactly evs, in order, each
// decoding back to the same event.
func (s *sink) checkEvents(evs []*event.Event) {
	s.t.Helper()
	got := s.acceptedItems()
	if len(got) != len(evs) {
		s.t.Fatalf("sink accepted %d events; want %d", len(got), len(evs))
	}
	for i, item := range got {
		checkItem(s.t, s.enc, item, evs[i])
	}
}

// checkItem asserts that item (a JSON value the output sent) is ev.
func checkItem(t *testing.T, enc encoding, item []byte, ev *event.Event) {
	t.Helper()
	if enc == encHEC {
		var env struct {
			Time  float64         `json:"time"`
			Event json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal(item, &env); err != nil {
			t.Fatalf("HEC envelope %q: %v", item, err)
		}
		var raw string
		if err := json.Unmarshal(env.Event, &raw); err != nil || raw != string(ev.Raw) {
			t.Fatalf("HEC event = %s; want %q", env.Event, ev.Raw)
		}
		if want := float64(ev.Time.UnixMilli()) / 1000; env.Time != want {
			t.Fatalf("HEC time = %v; want %v", env.Time, want)
		}
		return
	}
	got, err := format.DecodeJSON(item)
	if err != nil {
		t.Fatalf("decode %q: %v", item, err)
	}
	if !sameEvent(got, ev) {
		t.Fatalf("event differs:\n got %+v\nwant %+v", got, ev)
	}
}

func sameEvent(a, b *event.Event) bool {
	ac, bc := *a, *b
	if !ac.Time.Equal(bc.Time) || !ac.Received.Equal(bc.Received) {
		return false
	}
	ac.Time, bc.Time, ac.Received, bc.Received = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return reflect.DeepEqual(ac, bc)
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)

// mkEvents returns n distinct events with structured data, RFC 5424 raw
// frames and, for every 7th, a multi-line message with non-ASCII text.
func mkEvents(n int) []*event.Event {
	evs := make([]*event.Event, n)
	for i := range evs {
		ev := &event.Event{
			Time: t0.Add(time.Duration(i) * time.Millisecond), Received: t0.Add(time.Duration(i)*time.Millisecond + time.Second),
			Input: "in", Stream: "syslog", Origin: "10.0.0.1:5514",
			Facility: event.Facility(i % 24), Severity: event.Severity(i % 8),
			Host: fmt.Sprintf("web-%02d", i%5), App: "nginx", ProcID: fmt.Sprint(1000 + i), MsgID: "ID1",
			Message: fmt.Sprintf("message %05d payload=%s", i, strings.Repeat("x", i%50)),
			SD:      event.StructuredData{{ID: "meta", Params: []event.SDParam{{Name: "seq", Value: fmt.Sprint(i)}}}},
		}
		if i%7 == 3 {
			ev.Message += "\nsecond line \"quoted\" é ü \u2028"
		}
		ev.Raw = format.RFC5424.Append(nil, ev)
		evs[i] = ev
	}
	return evs
}

// newTestOutput builds an output for url with cfg modified by mod.
func newTestOutput(t *testing.T, url string, mod func(*Config)) *output {
	t.Helper()
	cfg := DefaultConfig()
	cfg.URL = url
	if mod != nil {
		mod(cfg)
	}
	out, err := New(cfg, outputs.Env{Name: "test"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	o := out.(*output)
	if err := o.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// encodingOf maps a config name to its encoding.
func encodingOf(name string) encoding {
	switch name {
	case "json_array":
		return encJSONArray
	case "splunk_hec":
		return encHEC
	}
	return encNDJSON
}
