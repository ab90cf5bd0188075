package tail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/router/event"
)

// recorder is a test Sink that keeps every event it accepted, in order.
type recorder struct {
	mu    sync.Mutex
	evs   []*event.Event
	emits int

	slow         sync.Mutex
	delay        time.Duration // sleep per Emit, one at a time (a pipeline slower than the writer)
	refuseOnDone bool          // once ctx is done, refuse (like a full queue) instead of accepting
	failNext     int           // fail this many Emits with a non-shutdown error
	failures     int
}

var errTestQueue = errors.New("test: queue broken")

func (r *recorder) Emit(ctx context.Context, evs []*event.Event) error {
	if r.delay > 0 {
		// One Emit at a time, like a single slow queue.
		r.slow.Lock()
		select {
		case <-time.After(r.delay):
		case <-ctx.Done():
		}
		r.slow.Unlock()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuseOnDone && ctx.Err() != nil {
		return ctx.Err()
	}
	if r.failNext > 0 {
		r.failNext--
		r.failures++
		return errTestQueue
	}
	r.evs = append(r.evs, evs...)
	r.emits++
	return nil
}

func (r *recorder) events() []*event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*event.Event(nil), r.evs...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

func (r *recorder) messages() []string {
	evs := r.events()
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Message
	}
	return out
}

// waitFor polls cond every 5ms and fails the test after 30s. The deadline
// only turns a hang into a failure; no assertion depends on timing.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wait returns once at least n events arrived.
func (r *recorder) wait(t testing.TB, n int) []*event.Event {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d events (have %d)", n, r.count()), func() bool { return r.count() >= n })
	return r.events()
}

// syncBuffer is a goroutine-safe log destination.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is an input started by start.
type running struct {
	in    *Input
	m     *inputs.Metrics
	logs  *syncBuffer
	state string
	stop  func() // cancels Run and checks it returned nil; idempotent
}

// testConfig returns a config following patterns with short timers.
func testConfig(patterns ...string) *Config {
	cfg := DefaultConfig()
	cfg.Paths = patterns
	cfg.PollInterval = "20ms"
	cfg.ScanInterval = "50ms"
	cfg.RotateWait = "300ms"
	return cfg
}

// start runs an input with state in stateDir until stop (or the test's
// end), and waits until it is ready.
func start(t testing.TB, cfg *Config, sink inputs.Sink, stateDir string) *running {
	t.Helper()
	r := &running{m: inputs.NewDiscardMetrics(), logs: &syncBuffer{}, state: stateDir}
	in, err := New(cfg, inputs.Env{
		Name:     "test",
		Logger:   slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		StateDir: stateDir,
		Metrics:  r.m,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.in = in.(*Input)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.in.Run(ctx, sink) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("input log:\n%s", tailString(r.logs.String(), 8000))
		}
	})
	select {
	case <-r.in.Ready():
	case err := <-done:
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("input not ready")
	}
	return r
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func (r *running) dropped(reason string) float64 {
	return testutil.ToFloat64(r.m.Dropped.WithLabelValues(reason))
}

// appendLines appends "prefix-i" for i in [from, to) to path.
func appendLines(t testing.TB, path, prefix string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b bytes.Buffer
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s-%d\n", prefix, i)
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// seqCheck verifies that msgs are "prefix-N" lines and returns how many
// times each N was seen.
func seqCount(t testing.TB, msgs []string, prefix string) map[int]int {
	t.Helper()
	seen := make(map[int]int)
	for _, m := range msgs {
		rest, ok := strings.CutPrefix(m, prefix+"-")
		if !ok {
			t.Fatalf("unexpected line %q", m)
		}
		n, err := strconv.Atoi(rest)
		if err != nil {
			t.Fatalf("unexpected line %q", m)
		}
		seen[n]++
	}
	return seen
}

// exactlyOnce fails unless seen holds each of [0, n) exactly once.
func exactlyOnce(t testing.TB, seen map[int]int, n int) {
	t.Helper()
	var missing, dup []int
	for i := range n {
		switch c := seen[i]; {
		case c == 0:
			missing = append(missing, i)
		case c > 1:
			dup = append(dup, i)
		}
	}
	if len(seen) > n {
		t.Errorf("%d distinct lines; want %d", len(seen), n)
	}
	if len(missing) > 0 || len(dup) > 0 {
		t.Fatalf("%d lines missing (first %v), %d duplicated (first %v)", len(missing), head(missing), len(dup), head(dup))
	}
}

func head(s []int) []int { return s[:min(len(s), 10)] }

func readPositions(t testing.TB, dir string) positionsFile {
	t.Helper()
	var pf positionsFile
	b, err := os.ReadFile(filepath.Join(dir, positionsName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pf); err != nil {
		t.Fatal(err)
	}
	return pf
}

// testEnv is an Env with discarded logs and metrics.
func testEnv() inputs.Env {
	return inputs.Env{Name: "test", Logger: slog.New(slog.DiscardHandler), Metrics: inputs.NewDiscardMetrics()}
}
