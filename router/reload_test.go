package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicelog/sluice/router/event"
)

// reloadRig runs a router on a config file in a temporary directory, so
// Reload reads the file as the daemon does.
type reloadRig struct {
	t    *testing.T
	dir  string
	path string
	r    *Router
	reg  *prometheus.Registry
	stop func() error
}

func startReloadable(t *testing.T, src string) *reloadRig {
	t.Helper()
	rig := &reloadRig{t: t, dir: t.TempDir()}
	rig.path = filepath.Join(rig.dir, "sluice.hcl")
	rig.write(src)
	plugins := testRegistry()
	cfg, diags := LoadFile(rig.path, plugins)
	if diags.HasErrors() {
		t.Fatalf("config did not load: %v", diags)
	}
	rig.reg = prometheus.NewRegistry()
	rig.r = New(cfg, Options{Registry: rig.reg, ConfigFile: rig.path, Plugins: plugins})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rig.r.Run(ctx) }()
	select {
	case <-rig.r.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatal("router never became ready")
	}
	var once sync.Once
	var err error
	rig.stop = func() error {
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
	t.Cleanup(func() { rig.stop() })
	return rig
}

// write puts src (with data_dir set to the rig's directory) in the file.
func (rig *reloadRig) write(src string) {
	rig.t.Helper()
	src = fmt.Sprintf("data_dir = %q\nshutdown_timeout = \"2s\"\n", rig.dir) + src
	if err := os.WriteFile(rig.path, []byte(src), 0o644); err != nil {
		rig.t.Fatal(err)
	}
}

func (rig *reloadRig) reload(src string) {
	rig.t.Helper()
	rig.write(src)
	if err := rig.r.Reload(); err != nil {
		rig.t.Fatalf("reload: %v", err)
	}
}

func (rig *reloadRig) emit(msgs ...string) {
	rig.t.Helper()
	var evs []*event.Event
	for _, m := range msgs {
		evs = append(evs, ev(m, 1, 6))
	}
	if err := rig.r.Emit(context.Background(), evs); err != nil {
		rig.t.Fatalf("Emit: %v", err)
	}
}

func (rig *reloadRig) out(name string) *captureOutput { return capture(rig.r.Config(), name) }

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func outputsSrc(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "output \"capture\" %q {\n  queue { type = \"memory\" }\n  batch { max_wait = \"1ms\" }\n}\n", n)
	}
	return b.String()
}

func routeSrc(targets ...string) string {
	var refs []string
	for _, t := range targets {
		refs = append(refs, "output.capture."+t)
	}
	return fmt.Sprintf("route \"all\" {\n  to = [%s]\n}\n", strings.Join(refs, ", "))
}

// Routes swap; an unchanged input and output keep running untouched (same
// instance, never stopped); an added output starts; a removed one drains
// what it was given and closes.
func TestReloadAppliesByName(t *testing.T) {
	in := "input \"feed\" \"in\" {}\n"
	rig := startReloadable(t, in+outputsSrc("a", "b")+routeSrc("a"))
	feed := rig.r.Config().Inputs[0].Input.(*feedInput)
	a := rig.out("a")
	rig.emit("one")

	rig.reload(in + outputsSrc("a", "b", "c") + routeSrc("b", "c"))
	rig.emit("two")
	c := rig.out("c")
	if rig.out("a") != a || rig.r.Config().Inputs[0].Input != feed {
		t.Fatal("an unchanged input or output was replaced")
	}
	select {
	case <-feed.stopped:
		t.Fatal("the unchanged input was stopped")
	default:
	}

	rig.reload(in + outputsSrc("a", "b") + routeSrc("a", "b"))
	rig.emit("three")
	waitFor(t, "c to close", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.closed })
	waitFor(t, "deliveries", func() bool {
		return len(rig.out("a").messages()) == 2 && len(rig.out("b").messages()) == 2
	})
	for name, want := range map[string]string{"a": "one,three", "b": "two,three"} {
		if got := strings.Join(rig.out(name).messages(), ","); got != want {
			t.Errorf("output %s got %q, want %q", name, got, want)
		}
	}
	if got := strings.Join(c.messages(), ","); got != "two" {
		t.Errorf("removed output c got %q, want two", got)
	}
	if a.closed {
		t.Error("unchanged output a was closed by a reload")
	}
	if got := testutil.ToFloat64(rig.r.reloadG.reloads.WithLabelValues("success")); got != 2 {
		t.Errorf("sluice_config_reloads_total{result=success} = %g, want 2", got)
	}
}

// A configuration that does not load changes nothing and sets
// sluice_config_last_reload_successful to 0 until a good one applies.
func TestReloadKeepsRunningOnBrokenConfig(t *testing.T) {
	in := "input \"feed\" \"in\" {}\n"
	rig := startReloadable(t, in+outputsSrc("a")+routeSrc("a"))
	rig.write(in + outputsSrc("a") + routeSrc("nope"))
	err := rig.r.Reload()
	var re *ReloadError
	if !errors.As(err, &re) || !strings.Contains(re.Text, "Unknown output") || !strings.Contains(re.Text, "sluice.hcl:") {
		t.Fatalf("Reload = %v; want a ReloadError naming the unknown output with its position", err)
	}
	if got := testutil.ToFloat64(rig.r.reloadG.lastOK); got != 0 {
		t.Errorf("last_reload_successful = %g after a broken config", got)
	}
	rig.emit("still-routed")
	waitFor(t, "delivery", func() bool { return len(rig.out("a").messages()) == 1 })

	rig.write(strings.Replace(in+outputsSrc("a")+routeSrc("a"), "input", fmt.Sprintf("spool {\n  dir = %q\n}\ninput", t.TempDir()), 1))
	if err := rig.r.Reload(); err == nil || !strings.Contains(err.Error(), "spool.dir changed") {
		t.Fatalf("Reload with a new spool.dir = %v; want it refused", err)
	}
	rig.reload(in + outputsSrc("a") + routeSrc("a"))
	if got := testutil.ToFloat64(rig.r.reloadG.lastOK); got != 1 {
		t.Errorf("last_reload_successful = %g after a good reload", got)
	}
}

// A changed output restarts on the same disk queue: the events it had not
// delivered — including the batch stuck in the old instance's Write — go
// out through the new instance, in order.
func TestReloadRestartsChangedOutputOnItsQueue(t *testing.T) {
	in := "input \"feed\" \"in\" {}\n"
	outA := func(extra string) string {
		return "output \"capture\" \"a\" {\n" + extra + "  batch {\n    max_wait = \"1ms\"\n    max_events = 10\n  }\n}\n"
	}
	rig := startReloadable(t, in+outA("  gate = true\n")+routeSrc("a"))
	old := rig.out("a")
	var msgs []string
	for i := range 100 {
		msgs = append(msgs, strconv.Itoa(i))
	}
	rig.emit(msgs...)
	rig.reload(in + outA("") + routeSrc("a"))
	rig.emit("after")
	nu := rig.out("a")
	if nu == old {
		t.Fatal("the changed output was not replaced")
	}
	waitFor(t, "delivery", func() bool { return len(nu.messages()) >= 101 })
	if got, want := strings.Join(nu.messages(), ","), strings.Join(append(msgs, "after"), ","); got != want {
		t.Fatalf("new instance got\n%s\nwant\n%s", got, want)
	}
	if !old.closed || len(old.messages()) != 0 {
		t.Fatalf("old instance: closed %v, got %d events", old.closed, len(old.messages()))
	}
}

// Changing an output's queue block moves what the old queue held into the
// new one (memory → disk here).
func TestReloadMovesEventsToANewQueue(t *testing.T) {
	in := "input \"feed\" \"in\" {}\n"
	rig := startReloadable(t, in+`output "capture" "a" {
  gate  = true
  queue { type = "memory" }
  batch { max_wait = "1ms" }
}
`+routeSrc("a"))
	rig.emit("1", "2", "3", "4", "5")
	rig.reload(in + `output "capture" "a" {
  batch { max_wait = "1ms" }
}
` + routeSrc("a"))
	rig.emit("6")
	nu := rig.out("a")
	waitFor(t, "delivery", func() bool { return len(nu.messages()) >= 6 })
	if got := strings.Join(nu.messages(), ","); got != "1,2,3,4,5,6" {
		t.Fatalf("got %q, want 1..6 in order", got)
	}
	if typ := rig.r.Config().Outputs[0].Queue.Type; typ != "disk" {
		t.Fatalf("queue type after reload = %q", typ)
	}
}

// An added input starts; a changed one restarts (flushing what it read
// through the routes in force); a removed one stops.
func TestReloadInputs(t *testing.T) {
	rig := startReloadable(t, "input \"feed\" \"one\" {}\ninput \"feed\" \"two\" {}\n"+outputsSrc("a")+routeSrc("a"))
	byName := func() map[string]*feedInput {
		m := map[string]*feedInput{}
		for _, in := range rig.r.Config().Inputs {
			m[in.Name] = in.Input.(*feedInput)
		}
		return m
	}
	before := byName()
	rig.reload("input \"feed\" \"one\" {\n  flush_on_stop = \"x\"\n}\ninput \"feed\" \"three\" {}\n" + outputsSrc("a") + routeSrc("a"))
	after := byName()
	for name, stopped := range map[string]bool{"one": true, "two": true} {
		select {
		case <-before[name].stopped:
		default:
			if stopped {
				t.Errorf("input %s still runs", name)
			}
		}
	}
	if after["one"] == before["one"] || after["three"] == nil || after["two"] != nil {
		t.Fatalf("inputs after reload: %v", after)
	}
	select {
	case <-after["three"].ready:
	case <-time.After(5 * time.Second):
		t.Fatal("added input never started")
	}
}

// Reload under load: while senders stream numbered events, routes change
// and outputs are added, changed and removed by several reloads. Every
// event reaches exactly the outputs of one configuration that was in force
// while it was emitted, once each, and none is lost.
func TestReloadUnderLoad(t *testing.T) {
	in := "input \"feed\" \"in\" {}\n"
	gens := []struct {
		outs, route []string
		changeA     bool
	}{
		{[]string{"a", "b"}, []string{"a"}, false},
		{[]string{"a", "b", "x"}, []string{"a", "x"}, false},
		{[]string{"a", "b", "x"}, []string{"b"}, false},
		{[]string{"a", "b"}, []string{"a", "b"}, false},
		{[]string{"a", "b"}, []string{"a"}, true},
		{[]string{"a", "b", "y"}, []string{"y", "b"}, true},
		{[]string{"a", "b"}, []string{"b", "a"}, false},
	}
	src := func(g int) string {
		s := in + outputsSrc(gens[g].outs...) + routeSrc(gens[g].route...)
		if gens[g].changeA {
			s = strings.Replace(s, "output \"capture\" \"a\" {\n", "output \"capture\" \"a\" {\n  reject = \"never\"\n", 1)
		}
		return s
	}
	rig := startReloadable(t, src(0))
	instances := map[*captureOutput]string{}
	note := func() {
		for _, o := range rig.r.Config().Outputs {
			instances[o.Output.(*captureOutput)] = o.Name
		}
	}
	note()

	var started, finished atomic.Int64 // reloads begun / completed
	type span struct{ lo, hi int64 }
	var mu sync.Mutex
	spans := map[string]span{}
	stopSend := make(chan struct{})
	var wg sync.WaitGroup
	for sender := range 2 {
		wg.Go(func() {
			for i := 0; i < 200_000; i++ {
				select {
				case <-stopSend:
					return
				default:
				}
				var evs []*event.Event
				lo := finished.Load()
				for j := range 5 {
					evs = append(evs, ev(fmt.Sprintf("%d-%d-%d", sender, i, j), 1, 6))
				}
				if err := rig.r.Emit(context.Background(), evs); err != nil {
					t.Errorf("Emit: %v", err)
					return
				}
				hi := started.Load()
				mu.Lock()
				for _, e := range evs {
					spans[e.Message] = span{lo, hi}
				}
				mu.Unlock()
			}
		})
	}
	for g := 1; g < len(gens); g++ {
		time.Sleep(30 * time.Millisecond)
		started.Add(1)
		rig.reload(src(g))
		finished.Add(1)
		note()
	}
	time.Sleep(30 * time.Millisecond)
	close(stopSend)
	wg.Wait()
	if err := rig.stop(); err != nil {
		t.Fatal(err)
	}

	got := map[string][]string{} // message → outputs that received it
	for o, name := range instances {
		for _, m := range o.messages() {
			got[m] = append(got[m], name)
		}
	}
	if len(spans) < 1000 {
		t.Fatalf("only %d events sent", len(spans))
	}
	bad := 0
	for m, sp := range spans {
		outs := got[m]
		slices.Sort(outs)
		ok := false
		for g := sp.lo; g <= sp.hi && g < int64(len(gens)); g++ {
			want := slices.Clone(gens[g].route)
			slices.Sort(want)
			if slices.Equal(outs, want) {
				ok = true
			}
		}
		if !ok {
			if bad++; bad <= 5 {
				t.Errorf("event %s (configs %d..%d in force) reached %v", m, sp.lo, sp.hi, outs)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d events misrouted, lost or duplicated", bad, len(spans))
	}
	t.Logf("%d events across %d reloads, each delivered exactly as routed", len(spans), len(gens)-1)
}

// A changed output whose new queue cannot be opened (its spool directory
// is a file) refuses the whole reload before anything changes: the old
// output keeps delivering, and the router stops cleanly.
func TestReloadRefusesAQueueThatCannotOpen(t *testing.T) {
	in := "input \"feed\" \"in\" {}\n"
	rig := startReloadable(t, in+outputsSrc("a")+routeSrc("a"))
	old := rig.out("a")
	rig.emit("1")
	if err := os.MkdirAll(filepath.Join(rig.dir, "spool"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rig.dir, "spool", "a"), []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	rig.write(in + "output \"capture\" \"a\" {\n  batch { max_wait = \"1ms\" }\n}\n" + routeSrc("a")) // disk queue
	if err := rig.r.Reload(); err == nil {
		t.Fatal("a reload whose disk queue cannot open succeeded")
	}
	if v := testutil.ToFloat64(rig.r.reloadG.lastOK); v != 0 {
		t.Fatalf("config_last_reload_successful = %v, want 0", v)
	}
	if rig.out("a") != old {
		t.Fatal("the output was replaced although the reload was refused")
	}
	rig.emit("2")
	waitFor(t, "both events at the old output", func() bool { return slices.Equal(old.messages(), []string{"1", "2"}) })
	if err := rig.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// Moving the pending events into a smaller drop_newest queue counts what
// it drops: delivered + dropped = pending.
func TestReloadMoveIntoDropNewestQueueCounts(t *testing.T) {
	in := "input \"feed\" \"in\" {}\n"
	rig := startReloadable(t, in+"output \"capture\" \"a\" {\n  gate = true\n  queue { type = \"memory\" }\n  batch { max_wait = \"1ms\" }\n}\n"+routeSrc("a"))
	const n = 5000
	var msgs []string
	for i := range n {
		msgs = append(msgs, strconv.Itoa(i))
	}
	rig.emit(msgs...)
	rig.reload(in + "output \"capture\" \"a\" {\n  queue {\n    type = \"memory\"\n    max_events = 100\n    when_full = \"drop_newest\"\n  }\n  batch { max_wait = \"1ms\" }\n}\n" + routeSrc("a"))
	nu := rig.out("a")
	dropped := func() float64 { return testutil.ToFloat64(rig.r.metrics.outDropped.WithLabelValues("a", "queue_full")) }
	waitFor(t, "every event delivered or counted as dropped", func() bool { return float64(len(nu.messages()))+dropped() == n })
	if dropped() == 0 {
		t.Fatal("nothing was dropped moving 5000 events into a 100-event drop_newest queue")
	}
}

// A worker told to stop finishes the batch in hand and stops, even with a
// backlog: a changed output is not held up (nor its old instance fed)
// until its queue is empty.
func TestWorkerStopsBetweenBatches(t *testing.T) {
	q := newMemQueue(QueueConfig{MaxEvents: 100000, MaxBytes: 1 << 30, WhenFull: "block"})
	var evs []*event.Event
	for range 5000 {
		evs = append(evs, ev("x", 1, 6))
	}
	if _, err := q.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	out := &slowOutput{}
	const batch = 10
	spec := &OutputSpec{Name: "s", Output: out, Batch: BatchConfig{MaxEvents: batch, MaxBytes: 1 << 20, MaxWait: 5 * time.Millisecond}}
	w := newWorker(spec, q, newMetrics(), slog.New(slog.DiscardHandler))
	hard, halt := context.WithCancel(context.Background())
	defer halt()
	soft, stop := context.WithCancel(hard)
	done := make(chan error, 1)
	go func() { done <- w.run(hard, soft) }()
	waitFor(t, "some deliveries", func() bool { return out.n.Load() > 0 })
	stop()
	before := out.n.Load()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("run = %v, want context.Canceled", err)
	}
	if more := out.n.Load() - before; more > batch {
		t.Fatalf("the worker delivered %d more events after being told to stop (batches of %d)", more, batch)
	}
	if pending, _ := q.Len(); int64(pending)+out.n.Load() != 5000 {
		t.Fatalf("%d pending + %d delivered != 5000", pending, out.n.Load())
	}
}

// slowOutput takes a millisecond per batch.
type slowOutput struct{ n atomic.Int64 }

func (s *slowOutput) Write(ctx context.Context, evs []*event.Event) error {
	time.Sleep(time.Millisecond)
	s.n.Add(int64(len(evs)))
	return nil
}
func (s *slowOutput) Close() error { return nil }

// An input a reload starts that fails at once makes the reload partial
// (config_last_reload_successful 0), and the next reload of the same file
// starts it again.
func TestReloadReportsAndRetriesAFailedInput(t *testing.T) {
	rig := startReloadable(t, "input \"feed\" \"in\" {}\n"+outputsSrc("a")+routeSrc("a"))
	src := "input \"feed\" \"in\" {}\ninput \"feed\" \"bad\" {\n  fail = true\n}\n" + outputsSrc("a") + routeSrc("a")
	for round := 1; round <= 2; round++ {
		rig.write(src)
		err := rig.r.Reload()
		if err == nil || !strings.Contains(err.Error(), `input "bad"`) {
			t.Fatalf("round %d: Reload = %v, want the input's failure", round, err)
		}
		if v := testutil.ToFloat64(rig.r.reloadG.lastOK); v != 0 {
			t.Fatalf("round %d: config_last_reload_successful = %v", round, v)
		}
		if v := testutil.ToFloat64(rig.r.reloadG.reloads.WithLabelValues("partial")); v != float64(round) {
			t.Fatalf("round %d: partial reloads = %v", round, v)
		}
		if v := testutil.ToFloat64(rig.r.reloadG.inputFailures); v != float64(round) {
			t.Fatalf("round %d: input failures = %v (the failed input was not started again)", round, v)
		}
	}
	rig.emit("still routed")
	waitFor(t, "the event", func() bool { return slices.Contains(rig.out("a").messages(), "still routed") })
}

// A changed output whose Open fails when the reload restarts it makes the
// reload partial; its worker opens it again (with the retry backoff)
// before writing, and the queued events are then delivered.
func TestReloadReopensAnOutputThatFailedToOpen(t *testing.T) {
	in := "input \"feed\" \"in\" {}\n"
	out := func(extra string) string {
		return "output \"capture\" \"a\" {\n" + extra + "  queue { type = \"memory\" }\n  batch { max_wait = \"1ms\" }\n  retry {\n    initial = \"10ms\"\n    max = \"20ms\"\n  }\n}\n"
	}
	rig := startReloadable(t, in+out("")+routeSrc("a"))
	rig.write(in + out("  fail_opens = 3\n") + routeSrc("a"))
	if err := rig.r.Reload(); err == nil || !strings.Contains(err.Error(), "cannot open yet") {
		t.Fatalf("Reload = %v, want the Open failure", err)
	}
	rig.emit("1", "2", "3")
	op := rig.r.Config().Outputs[0].Output.(*openerOutput)
	waitFor(t, "delivery after the output opened", func() bool { return slices.Equal(op.messages(), []string{"1", "2", "3"}) })
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.opens != 4 {
		t.Fatalf("%d Open calls, want 4 (3 failures, then success)", op.opens)
	}
}

// An output whose Open hangs while its worker retries it does not hold up
// the shutdown beyond shutdown_timeout: the worker's stop reaches Open, and
// its memory-queue events are counted as dropped.
func TestShutdownEndsAHangingReopen(t *testing.T) {
	in := "input \"feed\" \"in\" {}\n"
	out := func(extra string) string {
		return "output \"capture\" \"a\" {\n" + extra + "  queue { type = \"memory\" }\n  batch { max_wait = \"1ms\" }\n  retry {\n    initial = \"10ms\"\n    max = \"20ms\"\n  }\n}\n"
	}
	rig := startReloadable(t, in+out("")+routeSrc("a"))
	rig.write(in + out("  fail_opens = 1000\n  hang_opens = true\n") + routeSrc("a"))
	if err := rig.r.Reload(); err == nil {
		t.Fatal("Reload succeeded with an output that cannot open")
	}
	rig.emit("1", "2", "3")
	op := rig.r.Config().Outputs[0].Output.(*openerOutput)
	waitFor(t, "the worker's second Open (the hanging one)", func() bool {
		if !op.mu.TryLock() {
			return true // held by the hanging Open
		}
		defer op.mu.Unlock()
		return false
	})
	if err := rig.stop(); err != nil { // shutdown_timeout is 2s; Open's own limit is a minute
		t.Fatalf("Run: %v", err)
	}
	if v := testutil.ToFloat64(rig.r.metrics.outDropped.WithLabelValues("a", "shutdown")); v != 3 {
		t.Fatalf("dropped at shutdown = %v, want 3", v)
	}
}

// An output removed by one reload and added again by the next while it
// still drains gets its metrics registered, and keeps them once the old
// instance has finished draining.
func TestReloadReAddedOutputKeepsItsMetrics(t *testing.T) {
	in := "input \"feed\" \"in\" {}\n"
	a := func(extra string) string {
		return "output \"capture\" \"a\" {\n  metrics = true\n" + extra + "  queue { type = \"memory\" }\n  batch { max_wait = \"1ms\" }\n}\n"
	}
	rig := startReloadable(t, in+a("  gate = true\n")+outputsSrc("b")+routeSrc("a", "b"))
	rig.emit("held") // a's worker blocks on its gate: a drains for shutdown_timeout (2s)
	rig.reload(in + outputsSrc("b") + routeSrc("b"))
	rig.reload(in + a("") + outputsSrc("b") + routeSrc("a", "b"))
	series := func() int {
		n := 0
		mfs, err := rig.reg.Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "test_capture_writes_total" {
				n += len(mf.GetMetric())
			}
		}
		return n
	}
	rig.emit("after")
	waitFor(t, "the re-added output's delivery", func() bool { return slices.Contains(rig.out("a").messages(), "after") })
	if n := series(); n != 1 {
		t.Fatalf("%d test_capture_writes_total series while the old instance drains, want 1", n)
	}
	waitFor(t, "the old instance to finish draining", func() bool {
		return testutil.ToFloat64(rig.r.metrics.outDropped.WithLabelValues("a", "removed")) == 1
	})
	if n := series(); n != 1 {
		t.Fatalf("%d test_capture_writes_total series after the old instance stopped, want 1", n)
	}
}

// A reload that shutdown overtakes sends no READY=1 after STOPPING=1.
func TestReloadOvertakenByShutdownSendsNoReady(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.hcl")
	src := fmt.Sprintf("data_dir = %q\nshutdown_timeout = \"2s\"\ninput \"feed\" \"in\" {}\n", dir) + outputsSrc("a") + routeSrc("a")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	plugins := testRegistry()
	cfg, diags := LoadFile(path, plugins)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var sent []string
	var r *Router
	r = New(cfg, Options{Registry: prometheus.NewRegistry(), ConfigFile: path, Plugins: plugins, Notify: func(s string) error {
		mu.Lock()
		sent = append(sent, strings.SplitN(s, "\n", 2)[0])
		mu.Unlock()
		if strings.HasPrefix(s, "RELOADING=1") {
			cancel() // SIGTERM right after SIGHUP
			waitFor(t, "shutdown to begin", func() bool { return r.draining.Load() })
		}
		return nil
	}})
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	if err := r.Reload(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Reload = %v, want ErrNotRunning", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	stopping := slices.Index(sent, "STOPPING=1")
	if stopping < 0 || slices.Contains(sent[stopping:], "READY=1") {
		t.Fatalf("notifications %q: READY=1 after STOPPING=1", sent)
	}
}
