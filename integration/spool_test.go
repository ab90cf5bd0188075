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
	"strings"
	"sync"
	"testing"
	"time"
)

// collector is an HTTP endpoint that can be down (503) or up, optionally
// slow, and records every NDJSON event message it accepted, in order.
type collector struct {
	mu       sync.Mutex
	up       bool
	delay    time.Duration
	refused  int
	messages []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	up, delay := c.up, c.delay
	if !up {
		c.refused++
	}
	c.mu.Unlock()
	if !up {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	var got []string
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
		got = append(got, ev.Message)
	}
	if err := sc.Err(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	time.Sleep(delay)
	c.mu.Lock()
	c.messages = append(c.messages, got...)
	c.mu.Unlock()
}

func (c *collector) setUp(up bool, delay time.Duration) {
	c.mu.Lock()
	c.up, c.delay = up, delay
	c.mu.Unlock()
}

func (c *collector) snapshot() (refused int, messages []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused, append([]string(nil), c.messages...)
}

// waitMessages waits until the collector holds at least n messages.
func (c *collector) waitMessages(t *testing.T, n int, within time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, msgs := c.snapshot()
		if len(msgs) >= n || time.Now().After(deadline) {
			return msgs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func spoolConfig(port int, url, queue string) string {
	return withPort(fmt.Sprintf(`
shutdown_timeout = "1s"
admin {
  listen = "%%ADMIN%%"
}
input "syslog" "in" {
  listen = ["tcp://127.0.0.1:%%PORT%%"]
}
output "http" "siem" {
  url = %q
  queue {
%s
  }
  batch {
    max_events = 100
    max_wait   = "10ms"
  }
  retry {
    initial = "20ms"
    max     = "200ms"
  }
}
route "all" {
  to = [output.http.siem]
}
`, url, queue), port)
}

// The destination is down while events keep arriving, Sluice is restarted
// in the middle, the destination comes back: every event is delivered, in
// order, exactly once (nothing was accepted before, so nothing repeats).
func TestDiskQueueOutageAndRestartFIFO(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	coll := &collector{}
	srv := httptest.NewServer(coll)
	defer srv.Close()
	cfg := spoolConfig(port, srv.URL+"/ingest", `    type = "disk"`)

	d := startDaemon(t, dir, cfg)
	logger(t, port, "--tcp", "--octet-count", "-t", "app", "-f", writeMessages(t, dir, 3000, "before"))
	d.waitMetric(`sluice_input_events_total{input="in"}`, 3000)
	d.waitMetric(`sluice_output_retries_total{output="siem"}`, 2) // it is trying, and failing
	d.stop()                                                      // restart in the middle of the outage

	d = startDaemon(t, dir, cfg)
	if n := d.metric(`sluice_output_queue_events{output="siem"}`); n != 3000 {
		t.Fatalf("after the restart the queue holds %v events; want 3000", n)
	}
	logger(t, port, "--tcp", "--octet-count", "-t", "app", "-f", writeMessages(t, dir, 3000, "after"))
	d.waitMetric(`sluice_input_events_total{input="in"}`, 3000)
	if refused, msgs := coll.snapshot(); refused == 0 || len(msgs) != 0 {
		t.Fatalf("collector refused %d requests and accepted %d events; want refusals only", refused, len(msgs))
	}

	coll.setUp(true, 0)
	msgs := coll.waitMessages(t, 6000, 30*time.Second)
	d.waitMetric(`sluice_output_sent_events_total{output="siem"}`, 6000)
	d.stop()
	_, msgs = coll.snapshot()
	if len(msgs) != 6000 {
		t.Fatalf("collector got %d events; want 6000", len(msgs))
	}
	for i, m := range msgs {
		prefix, n := "before", i
		if i >= 3000 {
			prefix, n = "after", i-3000
		}
		if want := fmt.Sprintf("%s message %04d with some payload [x=%d]", prefix, n, n*7); m != want {
			t.Fatalf("event %d = %q; want %q (FIFO order)", i, m, want)
		}
	}
}

// live_first: after an outage and a kill -9, events that arrive while the
// backlog drains are delivered ahead of it, and the backlog gets about its
// configured share of the deliveries while both are waiting.
func TestDiskQueueLiveFirstAfterCrash(t *testing.T) {
	const backlog, live, share = 20000, 8000, 0.25
	dir := t.TempDir()
	port := freePort(t)
	coll := &collector{}
	srv := httptest.NewServer(coll)
	defer srv.Close()
	cfg := spoolConfig(port, srv.URL+"/ingest", fmt.Sprintf(`    type          = "disk"
    fsync         = "always"
    replay        = "live_first"
    backlog_share = %g`, share))

	d := startDaemon(t, dir, cfg)
	logger(t, port, "--tcp", "--octet-count", "-t", "app", "-f", writeMessages(t, dir, backlog, "old"))
	d.waitMetric(`sluice_input_events_total{input="in"}`, backlog)
	d.cmd.Process.Kill() // crash with the destination down
	<-d.exited

	// Slow but up: 100 events per ~15ms request, so the backlog takes a
	// few seconds and the new events arrive while it drains.
	coll.setUp(true, 15*time.Millisecond)
	d = startDaemon(t, dir, cfg)
	d.waitMetric(`sluice_output_sent_events_total{output="siem"}`, 500)
	logger(t, port, "--tcp", "--octet-count", "-t", "app", "-f", writeMessages(t, dir, live, "new"))
	msgs := coll.waitMessages(t, backlog+live, 60*time.Second)
	d.waitMetric(`sluice_spool_replay_events_total{output="siem",part="live"}`, live)
	d.stop()
	_, msgs = coll.snapshot()

	// Every event at least once; each part in its own order.
	seen := map[string]int{}
	nextOld, nextNew := 0, 0
	firstNew, lastOld := -1, -1
	for i, m := range msgs {
		seen[m]++
		if seen[m] > 1 {
			continue // a redelivery after the crash
		}
		switch {
		case strings.HasPrefix(m, "old "):
			if want := fmt.Sprintf("old message %04d with some payload [x=%d]", nextOld, nextOld*7); m != want {
				t.Fatalf("backlog event %d = %q; want %q", nextOld, m, want)
			}
			nextOld++
			lastOld = i
		case strings.HasPrefix(m, "new "):
			if want := fmt.Sprintf("new message %04d with some payload [x=%d]", nextNew, nextNew*7); m != want {
				t.Fatalf("live event %d = %q; want %q", nextNew, m, want)
			}
			if firstNew < 0 {
				firstNew = i
			}
			nextNew++
		default:
			t.Fatalf("unexpected event %q", m)
		}
	}
	if nextOld != backlog || nextNew != live {
		t.Fatalf("delivered %d backlog and %d live events; want %d and %d", nextOld, nextNew, backlog, live)
	}
	if firstNew < 0 || firstNew > lastOld {
		t.Fatalf("no live event was delivered while the backlog drained (first live at %d, last backlog at %d)", firstNew, lastOld)
	}
	// From the first live event until one part ran out, the backlog's share
	// of the deliveries is the configured one (within batch granularity).
	both, back, newLeft := 0, 0, live
	for _, m := range msgs[firstNew:] {
		if strings.HasPrefix(m, "new ") {
			newLeft--
		} else {
			back++
		}
		both++
		if newLeft == 0 || back == backlog {
			break
		}
	}
	got := float64(back) / float64(both)
	t.Logf("backlog share while both waited: %.3f (%d of %d); configured %.2f", got, back, both, share)
	if got < share-0.05 || got > share+0.05 {
		t.Errorf("backlog share while both waited = %.3f; want %.2f ± 0.05", got, share)
	}
}
