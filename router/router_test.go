package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/router/event"
)

// feedInput is a test input: Run publishes its sink on ready and waits.
type feedInput struct {
	sinkCh  chan inputs.Sink
	ready   chan struct{}
	fail    bool
	flush   string // emitted after ctx is cancelled, as an input flushes what it read
	flushed chan error
	stopped chan struct{} // closed when Run returns
}

type feedConfig struct {
	Fail  bool   `hcl:"fail,optional"`
	Flush string `hcl:"flush_on_stop,optional"`
}

func (f *feedInput) Run(ctx context.Context, sink inputs.Sink) error {
	defer close(f.stopped)
	if f.fail {
		return errors.New("cannot bind")
	}
	f.sinkCh <- sink
	close(f.ready)
	<-ctx.Done()
	if f.flush != "" {
		f.flushed <- sink.Emit(ctx, []*event.Event{ev(f.flush, 1, 6)})
	}
	return nil
}

func (f *feedInput) Ready() <-chan struct{} { return f.ready }

// captureOutput records what it is given; it fails the first FailFirst
// writes (retryably, or permanently) and can block until released.
type captureOutput struct {
	mu        sync.Mutex
	got       []*event.Event
	writes    int
	failFirst int
	permanent bool
	reject    string // messages equal to this are rejected via PartialError
	closed    bool
	gate      chan struct{}
}

type captureConfig struct {
	FailOpens int    `hcl:"fail_opens,optional"` // Open fails this many times (then the output needs Open)
	Metrics   bool   `hcl:"metrics,optional"`    // a prometheus.Collector: test_capture_writes_total{output=NAME}
	HangOpens bool   `hcl:"hang_opens,optional"` // with fail_opens: a failing Open first waits for its context to end
	Reject    string `hcl:"reject,optional"`
	FailFirst int    `hcl:"fail_first,optional"`
	Permanent bool   `hcl:"permanent,optional"`
	Gate      bool   `hcl:"gate,optional"`
	Size      string `hcl:"size,optional"`
}

func (c *captureOutput) Write(ctx context.Context, evs []*event.Event) error {
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	if c.writes <= c.failFirst {
		if c.permanent {
			return fmt.Errorf("%w: rejected", outputs.ErrPermanent)
		}
		return errors.New("temporarily down")
	}
	rejected := 0
	for _, e := range evs {
		if c.reject != "" && e.Message == c.reject {
			rejected++
			continue
		}
		c.got = append(c.got, e)
	}
	if rejected > 0 {
		return &outputs.PartialError{Rejected: rejected, Err: errors.New("unwritable")}
	}
	return nil
}

func (c *captureOutput) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func (c *captureOutput) messages() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.got {
		out = append(out, e.Message)
	}
	return out
}

func testRegistry() Registry {
	return Registry{
		Inputs: map[string]inputs.Type{
			"feed": inputs.NewType(func() *feedConfig { return &feedConfig{} }, func(c *feedConfig, _ inputs.Env) (inputs.Input, error) {
				return &feedInput{sinkCh: make(chan inputs.Sink, 1), ready: make(chan struct{}), fail: c.Fail,
					flush: c.Flush, flushed: make(chan error, 1), stopped: make(chan struct{})}, nil
			}),
		},
		Outputs: map[string]outputs.Type{
			"capture": outputs.NewType(func() *captureConfig { return &captureConfig{} }, func(c *captureConfig, env outputs.Env) (outputs.Output, error) {
				if c.Size != "" {
					if _, err := conf.ParseSize(c.Size); err != nil {
						return nil, errors.Join(conf.Field("size", err), conf.Field("fail_first", errors.New("second error")))
					}
				}
				o := &captureOutput{failFirst: c.FailFirst, permanent: c.Permanent, reject: c.Reject}
				if c.Gate {
					o.gate = make(chan struct{})
				}
				if c.FailOpens > 0 {
					return &openerOutput{captureOutput: o, failOpens: c.FailOpens, hang: c.HangOpens}, nil
				}
				if c.Metrics {
					return &metricCapture{captureOutput: o,
						desc: prometheus.NewDesc("test_capture_writes_total", "Writes.", nil, prometheus.Labels{"output": env.Name})}, nil
				}
				return o, nil
			}),
		},
	}
}

// mustLoad loads src, with data_dir set to a fresh temporary directory
// unless src sets it (queues are on disk by default).
func mustLoad(t *testing.T, src string) *Config {
	t.Helper()
	if !strings.Contains(src, "data_dir") {
		src = fmt.Sprintf("data_dir = %q\n", t.TempDir()) + src
	}
	return mustLoadAsIs(t, src)
}

// mustLoadAsIs loads src unchanged.
func mustLoadAsIs(t *testing.T, src string) *Config {
	t.Helper()
	cfg, diags := Load("test.hcl", []byte(src), testRegistry())
	if diags.HasErrors() {
		var b strings.Builder
		WriteDiagnostics(&b, cfg.Files, diags)
		t.Fatalf("config did not load:\n%s", b.String())
	}
	return cfg
}

// start runs a router on cfg and returns its sink and a stop function that
// shuts it down and returns Run's error.
func start(t *testing.T, cfg *Config) (*Router, inputs.Sink, func() error) {
	t.Helper()
	return startIn(t, cfg, t.TempDir())
}

// startIn is start with a given data directory (reused across restarts).
func startIn(t *testing.T, cfg *Config, dataDir string) (*Router, inputs.Sink, func() error) {
	t.Helper()
	cfg.DataDir = dataDir
	for _, o := range cfg.Outputs {
		o.StateDir = cfg.DataDir + "/out-" + o.Name
		o.Queue.Dir = cfg.DataDir + "/spool/" + o.Name
	}
	for _, in := range cfg.Inputs {
		in.StateDir = cfg.DataDir + "/in-" + in.Name
	}
	r := New(cfg, Options{Registry: prometheus.NewRegistry()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var sink inputs.Sink
	select {
	case sink = <-cfg.Inputs[0].Input.(*feedInput).sinkCh:
	case err := <-done:
		cancel()
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("input never started")
	}
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				err = errors.New("Run did not return")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return r, sink, stop
}

func capture(cfg *Config, name string) *captureOutput {
	for _, o := range cfg.Outputs {
		if o.Name == name {
			if op, ok := o.Output.(*openerOutput); ok {
				return op.captureOutput
			}
			if mc, ok := o.Output.(*metricCapture); ok {
				return mc.captureOutput
			}
			return o.Output.(*captureOutput)
		}
	}
	return nil
}

// metricCapture is a captureOutput that is a prometheus.Collector, as
// most real outputs are.
type metricCapture struct {
	*captureOutput
	desc *prometheus.Desc
}

func (m *metricCapture) Describe(ch chan<- *prometheus.Desc) { ch <- m.desc }

func (m *metricCapture) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(m.writes))
}

// openerOutput is a captureOutput that must be opened first (like zmq),
// and whose Open fails failOpens times.
type openerOutput struct {
	*captureOutput
	mu               sync.Mutex
	failOpens, opens int
	open, hang       bool
}

func (o *openerOutput) Open(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.opens++; o.opens <= o.failOpens {
		if o.hang && o.opens > 1 {
			<-ctx.Done()
		}
		return fmt.Errorf("cannot open yet (attempt %d)", o.opens)
	}
	o.open = true
	return nil
}

func (o *openerOutput) Write(ctx context.Context, evs []*event.Event) error {
	o.mu.Lock()
	open := o.open
	o.mu.Unlock()
	if !open {
		return errors.New("Write before Open")
	}
	return o.captureOutput.Write(ctx, evs)
}

const twoOutputs = `
shutdown_timeout = "5s"
input "feed" "in" {}
output "capture" "a" {
  batch {
    max_wait = "1ms"
  }
}
output "capture" "b" {
  batch {
    max_wait = "1ms"
  }
}
route "errors" {
  when     = severity <= "err"
  to       = [output.capture.a]
  continue = true
}
route "drop_debug" {
  when = severity == "debug"
  drop = true
}
route "auth" {
  when = facility == "auth"
  to   = [output.capture.b, output.capture.a]
}
unmatched = [output.capture.b]
`

func ev(msg string, fac event.Facility, sev event.Severity) *event.Event {
	return &event.Event{Message: msg, Facility: fac, Severity: sev, Raw: []byte(msg), Received: time.Now()}
}

func TestRouterRoutesAndDrains(t *testing.T) {
	cfg := mustLoad(t, twoOutputs)
	r, sink, stop := start(t, cfg)
	batch := []*event.Event{
		ev("crit-auth", 4, 2),  // errors(a) + continue → auth(b, a): a once, b once
		ev("info-auth", 4, 6),  // auth → b, a
		ev("debug-user", 1, 7), // drop_debug
		ev("info-user", 1, 6),  // unmatched → b
		ev("err-user", 1, 3),   // errors → a, then nothing else matches
	}
	if err := sink.Emit(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := strings.Join(capture(cfg, "a").messages(), ","), "crit-auth,info-auth,err-user"; got != want {
		t.Errorf("output a got %s; want %s", got, want)
	}
	if got, want := strings.Join(capture(cfg, "b").messages(), ","), "crit-auth,info-auth,info-user"; got != want {
		t.Errorf("output b got %s; want %s", got, want)
	}
	m := cfg.metrics
	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"errors matches", m.routeMatches.WithLabelValues("errors"), 2},
		{"drop_debug matches", m.routeMatches.WithLabelValues("drop_debug"), 1},
		{"auth matches", m.routeMatches.WithLabelValues("auth"), 2},
		{"unmatched", m.unmatched, 1},
		{"route drops", m.routerDropped.WithLabelValues("route"), 1},
		{"a sent", m.outSent.WithLabelValues("a"), 3},
		{"b sent", m.outSent.WithLabelValues("b"), 3},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v; want %v", c.name, got, c.want)
		}
	}
	if !capture(cfg, "a").closed || !capture(cfg, "b").closed {
		t.Error("outputs not closed at shutdown")
	}
	if err := sink.Emit(context.Background(), batch); !errors.Is(err, inputs.ErrClosed) {
		t.Errorf("Emit after shutdown = %v; want ErrClosed", err)
	}
	_ = r
}

func TestRouterRetriesThenDelivers(t *testing.T) {
	cfg := mustLoad(t, `
input "feed" "in" {}
output "capture" "flaky" {
  fail_first = 3
  retry {
    initial = "1ms"
    max     = "5ms"
  }
}
route "all" {
  to = [output.capture.flaky]
}`)
	_, sink, stop := start(t, cfg)
	sink.Emit(context.Background(), []*event.Event{ev("one", 1, 6), ev("two", 1, 6)})
	stop()
	if got := strings.Join(capture(cfg, "flaky").messages(), ","); got != "one,two" {
		t.Fatalf("delivered %q; want one,two after retries", got)
	}
	if got := testutil.ToFloat64(cfg.metrics.outRetries.WithLabelValues("flaky")); got != 3 {
		t.Errorf("retries = %v; want 3", got)
	}
	if got := testutil.ToFloat64(cfg.metrics.outErrors.WithLabelValues("flaky", "retryable")); got != 3 {
		t.Errorf("retryable errors = %v; want 3", got)
	}
}

func TestRouterPermanentFailureDropsAndCounts(t *testing.T) {
	cfg := mustLoad(t, `
input "feed" "in" {}
output "capture" "strict" {
  fail_first = 1
  permanent  = true
  batch {
    max_events = 2
  }
}
route "all" {
  to = [output.capture.strict]
}`)
	_, sink, stop := start(t, cfg)
	sink.Emit(context.Background(), []*event.Event{ev("a", 1, 6), ev("b", 1, 6), ev("c", 1, 6)})
	stop()
	if got := strings.Join(capture(cfg, "strict").messages(), ","); got != "c" {
		t.Fatalf("delivered %q; want only c (first batch of 2 rejected permanently)", got)
	}
	if got := testutil.ToFloat64(cfg.metrics.outDropped.WithLabelValues("strict", "permanent")); got != 2 {
		t.Errorf("dropped permanent = %v; want 2", got)
	}
}

func TestRouterRetriesExhausted(t *testing.T) {
	cfg := mustLoad(t, `
input "feed" "in" {}
output "capture" "x" {
  fail_first = 100
  retry {
    initial      = "1ms"
    max          = "1ms"
    max_attempts = 3
  }
}
route "all" {
  to = [output.capture.x]
}`)
	_, sink, stop := start(t, cfg)
	sink.Emit(context.Background(), []*event.Event{ev("a", 1, 6)})
	stop()
	if got := testutil.ToFloat64(cfg.metrics.outDropped.WithLabelValues("x", "retries_exhausted")); got != 1 {
		t.Errorf("dropped retries_exhausted = %v; want 1", got)
	}
}

// A dead output fills only its own queue: the healthy one keeps delivering.
func TestRouterIsolatesStuckOutput(t *testing.T) {
	cfg := mustLoad(t, `
shutdown_timeout = "100ms"
input "feed" "in" {}
output "capture" "stuck" {
  gate = true
  queue {
    type       = "memory"
    max_events = 1000
    when_full  = "drop_newest"
  }
}
output "capture" "healthy" {
  batch {
    max_wait = "1ms"
  }
}
route "all" {
  to = [output.capture.stuck, output.capture.healthy]
}`)
	_, sink, stop := start(t, cfg)
	for i := range 30 {
		batch := make([]*event.Event, 100)
		for j := range batch {
			batch[j] = ev(fmt.Sprint(i*100+j), 1, 6)
		}
		if err := sink.Emit(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(capture(cfg, "healthy").messages()) < 3000 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(capture(cfg, "healthy").messages()); n != 3000 {
		t.Fatalf("healthy output got %d events; want 3000 while the other is stuck", n)
	}
	stop()
	dropped := testutil.ToFloat64(cfg.metrics.outDropped.WithLabelValues("stuck", "queue_full"))
	lost := testutil.ToFloat64(cfg.metrics.outDropped.WithLabelValues("stuck", "shutdown"))
	if dropped != 2000 || lost != 1000 {
		t.Errorf("stuck output: queue_full drops = %v, shutdown losses = %v; want 2000 and 1000", dropped, lost)
	}
}

func TestRouterInputFailureStopsRun(t *testing.T) {
	cfg := mustLoad(t, `
input "feed" "bad" {
  fail = true
}
output "capture" "a" {}
route "all" {
  to = [output.capture.a]
}`)
	cfg.DataDir = t.TempDir()
	r := New(cfg, Options{})
	err := r.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), `input "bad": cannot bind`) {
		t.Fatalf("Run = %v; want the input's error", err)
	}
}

func TestAdminEndpoints(t *testing.T) {
	cfg := mustLoad(t, `
admin {
  listen = "127.0.0.1:0"
}
input "feed" "in" {}
output "capture" "a" {}
route "all" {
  to = [output.capture.a]
}`)
	r, sink, stop := start(t, cfg)
	select {
	case <-r.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("router never ready")
	}
	sink.Emit(context.Background(), []*event.Event{ev("x", 1, 6)})
	base := "http://" + r.AdminAddr().String()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz = %d", code)
	}
	code, body := get("/metrics")
	for _, want := range []string{`sluice_route_matches_total{route="all"} 1`, `sluice_output_queue_events{output="a"}`, `sluice_build_info`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}
	stop()
}

// What an input already read when shutdown begins is flushed and delivered.
func TestRouterShutdownAcceptsInputFlush(t *testing.T) {
	cfg := mustLoad(t, `
input "feed" "in" {
  flush_on_stop = "last-words"
}
output "capture" "a" {}
route "all" {
  to = [output.capture.a]
}`)
	_, sink, stop := start(t, cfg)
	sink.Emit(context.Background(), []*event.Event{ev("first", 1, 6)})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := <-cfg.Inputs[0].Input.(*feedInput).flushed; err != nil {
		t.Fatalf("flush during shutdown refused: %v", err)
	}
	if got := strings.Join(capture(cfg, "a").messages(), ","); got != "first,last-words" {
		t.Fatalf("delivered %q; want first,last-words", got)
	}
}

// A PartialError drops only the events it names; the rest counts as sent
// and the batch is not retried.
func TestRouterPartialRejection(t *testing.T) {
	cfg := mustLoad(t, `
input "feed" "in" {}
output "capture" "a" {
  reject = "bad"
}
route "all" {
  to = [output.capture.a]
}`)
	_, sink, stop := start(t, cfg)
	sink.Emit(context.Background(), []*event.Event{ev("x", 1, 6), ev("bad", 1, 6), ev("y", 1, 6)})
	stop()
	if got := strings.Join(capture(cfg, "a").messages(), ","); got != "x,y" {
		t.Fatalf("delivered %q; want x,y", got)
	}
	m := cfg.metrics
	if s, d, r := testutil.ToFloat64(m.outSent.WithLabelValues("a")), testutil.ToFloat64(m.outDropped.WithLabelValues("a", "permanent")),
		testutil.ToFloat64(m.outRetries.WithLabelValues("a")); s != 2 || d != 1 || r != 0 {
		t.Fatalf("sent=%v dropped=%v retries=%v; want 2, 1, 0", s, d, r)
	}
}

// A disk queue keeps what its output could not deliver across a restart,
// and the restarted router delivers all of it, in order.
func TestDiskQueueSurvivesRestart(t *testing.T) {
	const down = `
shutdown_timeout = "200ms"
input "feed" "in" {}
output "capture" "a" {
  fail_first = 1000000
  retry {
    initial = "10ms"
    max     = "10ms"
  }
  queue {
    type  = "disk"
    fsync = "always"
  }
}
route "all" {
  to = [output.capture.a]
}`
	dir := t.TempDir()
	cfg := mustLoad(t, down)
	_, sink, stop := startIn(t, cfg, dir)
	var batch []*event.Event
	for i := range 500 {
		batch = append(batch, ev(fmt.Sprintf("m%03d", i), 1, 6))
	}
	if err := sink.Emit(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(capture(cfg, "a").messages()); n != 0 {
		t.Fatalf("the down output delivered %d events", n)
	}
	if got := testutil.ToFloat64(cfg.metrics.outDropped.WithLabelValues("a", "shutdown")); got != 0 {
		t.Fatalf("disk queue counted %v events lost at shutdown", got)
	}

	up := strings.Replace(down, "fail_first = 1000000", "", 1)
	cfg2 := mustLoad(t, up)
	_, _, stop2 := startIn(t, cfg2, dir)
	deadline := time.Now().Add(10 * time.Second)
	for len(capture(cfg2, "a").messages()) < 500 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop2()
	got := capture(cfg2, "a").messages()
	if len(got) != 500 {
		t.Fatalf("after restart delivered %d events; want 500", len(got))
	}
	for i, m := range got {
		if want := fmt.Sprintf("m%03d", i); m != want {
			t.Fatalf("event %d = %q; want %q (order)", i, m, want)
		}
	}
}

func TestSpoolMetricsOnAdmin(t *testing.T) {
	cfg := mustLoad(t, `
shutdown_timeout = "100ms"
admin {
  listen = "127.0.0.1:0"
}
input "feed" "in" {}
output "capture" "stuck" {
  gate = true
  queue {
    type = "disk"
  }
}
output "capture" "lf" {
  queue {
    replay = "live_first"
  }
}
route "all" {
  to = [output.capture.stuck]
}`)
	r, sink, stop := start(t, cfg)
	<-r.Ready()
	sink.Emit(context.Background(), []*event.Event{ev("a", 1, 6), ev("b", 1, 6), ev("c", 1, 6)})
	time.Sleep(20 * time.Millisecond)
	resp, err := http.Get("http://" + r.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`sluice_spool_appended_total{output="stuck"} 3`,
		`sluice_output_queue_events{output="stuck"} 3`,
		`sluice_spool_write_error{output="stuck"} 0`,
		`sluice_spool_lost_events_total{output="stuck"} 0`,
		`sluice_spool_oldest_event_age_seconds{output="stuck"} `,
		`sluice_spool_fsync_seconds_total{output="stuck"} `,
		`sluice_spool_backlog_events{output="stuck"} 0`,
		`sluice_spool_replay_events_total{output="lf",part="backlog"} 0`,
		`sluice_spool_replay_events_total{output="lf",part="live"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(string(body), `sluice_spool_oldest_event_age_seconds{output="stuck"} 0`+"\n") {
		t.Error("oldest event age is 0 while 3 events wait")
	}
	stop()
}

// failingQueue refuses every Append, like a disk queue with a write error.
type failingQueue struct{ Queue }

func (failingQueue) Append(context.Context, []*event.Event) (int, error) {
	return 0, errors.New("disk full")
}

// One output's queue failing must not keep the others from their events.
func TestEmitIsolatesAFailingQueue(t *testing.T) {
	cfg := mustLoad(t, twoOutputs)
	r, sink, stop := start(t, cfg)
	<-r.Ready()
	a := r.state.Load().outs[0] // output "a"
	a.q = failingQueue{a.q}
	err := sink.Emit(context.Background(), []*event.Event{ev("crit-auth", 4, 2)}) // routed to a and b
	if err == nil || !strings.Contains(err.Error(), `output "a"`) {
		t.Fatalf("Emit = %v; want the failing output's error", err)
	}
	stop()
	if got := strings.Join(capture(cfg, "b").messages(), ","); got != "crit-auth" {
		t.Fatalf("healthy output b got %q; want crit-auth", got)
	}
}

// collectingInput and collectingOutput export a metric of their own.
type collectingInput struct {
	*feedInput
	c prometheus.Counter
}

func (c collectingInput) Describe(ch chan<- *prometheus.Desc) { c.c.Describe(ch) }
func (c collectingInput) Collect(ch chan<- prometheus.Metric) { c.c.Collect(ch) }

type collectingOutput struct {
	*captureOutput
	c prometheus.Counter
}

func (c collectingOutput) Describe(ch chan<- *prometheus.Desc) { c.c.Describe(ch) }
func (c collectingOutput) Collect(ch chan<- prometheus.Metric) { c.c.Collect(ch) }

// Plugins that implement prometheus.Collector are registered by Run.
func TestPluginCollectorsRegistered(t *testing.T) {
	reg := testRegistry()
	reg.Inputs["cfeed"] = inputs.NewType(func() *feedConfig { return &feedConfig{} }, func(c *feedConfig, _ inputs.Env) (inputs.Input, error) {
		in := &feedInput{sinkCh: make(chan inputs.Sink, 1), ready: make(chan struct{}), flushed: make(chan error, 1), stopped: make(chan struct{})}
		return collectingInput{in, prometheus.NewCounter(prometheus.CounterOpts{Name: "test_input_metric_total", Help: "x"})}, nil
	})
	reg.Outputs["ccap"] = outputs.NewType(func() *captureConfig { return &captureConfig{} }, func(c *captureConfig, _ outputs.Env) (outputs.Output, error) {
		return collectingOutput{&captureOutput{}, prometheus.NewCounter(prometheus.CounterOpts{Name: "test_output_metric_total", Help: "x"})}, nil
	})
	cfg, diags := Load("test.hcl", []byte(fmt.Sprintf(`
data_dir = %q
input "cfeed" "in" {}
output "ccap" "out" {}
route "all" {
  to = [output.ccap.out]
}`, t.TempDir())), reg)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	preg := prometheus.NewRegistry()
	r := New(cfg, Options{Registry: preg})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Ready()
	mfs, err := preg.Gather()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		found[mf.GetName()] = true
	}
	if !found["test_input_metric_total"] || !found["test_output_metric_total"] {
		t.Fatalf("plugin metrics not registered: input %v, output %v", found["test_input_metric_total"], found["test_output_metric_total"])
	}
}
