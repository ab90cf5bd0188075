package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/router/event"
	"github.com/sluicelog/sluice/rules"
	"github.com/sluicelog/sluice/spool"
)

// Router runs a loaded Config: it starts the outputs' queues and workers,
// then the inputs, routes what the inputs Emit, applies new configurations
// (Reload) while it runs, and shuts everything down in order when its
// context ends.
type Router struct {
	log     *slog.Logger
	reg     *prometheus.Registry
	version string
	opts    Options
	metrics *Metrics
	dropC   [2]prometheus.Counter // route, unmatched

	// state is what Emit routes with: the table and the outputs its
	// indices name. Reload swaps it.
	state atomic.Pointer[state]

	// mu serializes Run's setup and shutdown with Reload, and guards what
	// follows.
	mu       sync.Mutex
	cfg      *Config // the configuration in force
	outs     map[string]*liveOutput
	ins      map[string]*liveInput
	running  bool            // Run has started the pipeline and not begun shutting down
	ictx     context.Context // parent of every input's context
	icancel  context.CancelFunc
	wctx     context.Context // parent of every worker's context (cancelled to force)
	wcancel  context.CancelFunc
	adminSrv *http.Server
	iwg      sync.WaitGroup // input goroutines
	wwg      sync.WaitGroup // worker goroutines, including removed outputs draining
	// removing holds the removed outputs still draining, by name, whose
	// metrics are still registered: an output added again under the same
	// name takes their place (its collector has the same descriptions).
	removing sync.Map
	inErr    chan error // failures of the inputs started by Run
	reloadG  reloadMetrics

	closing  atomic.Bool // Emit refuses new events (after the inputs stopped)
	draining atomic.Bool // shutdown began: /readyz reports 503
	ready    chan struct{}

	adminMu   sync.Mutex
	adminAddr net.Addr
}

// state is one routing generation. Emit holds mu.RLock while it uses it;
// Reload retires a replaced state by taking mu.Lock, which waits for the
// Emits still using it (so nothing is appended to an output it removed
// after it closes that output's queue).
type state struct {
	mu      sync.RWMutex
	retired bool
	table   *rules.Table
	outs    []*liveOutput // indexed like the table's output indices
	routeC  []prometheus.Counter
	scratch sync.Pool
}

// liveOutput is a running output: its spec, its queue and its worker.
type liveOutput struct {
	spec *OutputSpec
	// q is usable once ready is closed. It is closed at creation except
	// while a reload replaces the queue of a changed output; appenders wait.
	q       Queue
	ready   chan struct{}
	removed atomic.Bool // Reload removed it: appends refused are counted, not errors
	// next is set when a reload gave this output a new queue: appends this
	// queue refuses go there instead.
	next atomic.Pointer[liveOutput]
	// unopened: the output's Open failed when a reload restarted it; its
	// worker opens it again (with the retry backoff) before writing.
	unopened bool
	stop     context.CancelFunc
	halt     context.CancelFunc
	done     chan struct{} // closed when the worker returned
}

func (o *liveOutput) queue() Queue {
	select {
	case <-o.ready:
		return o.q
	default:
		return nil
	}
}

func (o *liveOutput) append(ctx context.Context, evs []*event.Event) (int, error) {
	select {
	case <-o.ready:
	default:
		select {
		case <-o.ready:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	dropped, err := o.q.Append(ctx, evs)
	if n := o.next.Load(); n != nil && errors.Is(err, ErrQueueClosed) {
		return n.append(ctx, evs) // at least once: some may be in both queues
	}
	return dropped, err
}

// liveInput is a running input.
type liveInput struct {
	spec   *InputSpec
	cancel context.CancelFunc
	done   chan struct{}
	// err is why an input started by a reload ended (nil: it did not
	// fail); written before done closes. A reload restarts a failed input.
	err error
}

// Options are the injected dependencies of a Router.
type Options struct {
	Logger   *slog.Logger         // nil discards
	Registry *prometheus.Registry // metrics are registered here and served on /metrics; nil = a new one
	Version  string               // reported by sluice_build_info
	// ConfigFile and Plugins are what Reload loads (SIGHUP, POST /reload);
	// without ConfigFile, Reload reports an error.
	ConfigFile string
	Plugins    Registry
	// OnReload, if set, is called after each successful Reload with the
	// configuration now in force (cmd/sluice applies memory_limit).
	OnReload func(*Config)
	// Notify, if set, receives service states in sd_notify(3) form:
	// READY=1 once every input serves, RELOADING=1 (with MONOTONIC_USEC)
	// and READY=1 around each reload, STOPPING=1 when shutdown begins.
	Notify func(state string) error
}

func (r *Router) notify(state string) {
	if r.opts.Notify == nil {
		return
	}
	if err := r.opts.Notify(state); err != nil {
		r.log.Warn("service manager notification failed", "err", err)
	}
}

// New prepares a Router for cfg (which must have loaded without errors). It
// has no side effects: sockets, files and goroutines start in Run.
func New(cfg *Config, opts Options) *Router {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	r := &Router{cfg: cfg, log: opts.Logger.With("component", "router"), reg: opts.Registry,
		version: opts.Version, opts: opts, metrics: cfg.metrics, ready: make(chan struct{}),
		outs: map[string]*liveOutput{}, ins: map[string]*liveInput{}, reloadG: newReloadMetrics()}
	r.dropC[0] = r.metrics.routerDropped.WithLabelValues("route")
	r.dropC[1] = r.metrics.routerDropped.WithLabelValues("unmatched")
	var outs []*liveOutput
	for _, o := range cfg.Outputs {
		lo := &liveOutput{spec: o, ready: make(chan struct{})}
		r.outs[o.Name] = lo
		outs = append(outs, lo)
	}
	r.state.Store(r.newState(cfg, outs))
	return r
}

func (r *Router) newState(cfg *Config, outs []*liveOutput) *state {
	s := &state{table: cfg.Table, outs: outs}
	for _, rs := range cfg.Routes {
		s.routeC = append(s.routeC, r.metrics.routeMatches.WithLabelValues(rs.Name))
	}
	nOut, nRoutes := len(outs), len(cfg.Routes)
	s.scratch.New = func() any {
		return &scratch{per: make([][]*event.Event, nOut), routeN: make([]int, nRoutes)}
	}
	return s
}

// openQueue opens the queue an output's spec asks for; a disk queue
// recovers its directory here.
func (r *Router) openQueue(o *OutputSpec) (Queue, error) {
	if o.Queue.Type != "disk" {
		return newMemQueue(o.Queue), nil
	}
	dq, err := openDiskQueue(o.Queue.Dir, o.Queue, r.log.With("component", "spool", "output", o.Name))
	if err != nil {
		return nil, fmt.Errorf("output %q: opening its disk queue: %w", o.Name, err)
	}
	return dq, nil
}

// Ready is closed once every input accepts data; /readyz follows it.
func (r *Router) Ready() <-chan struct{} { return r.ready }

// AdminAddr returns the admin listener's address once Ready (nil if none).
func (r *Router) AdminAddr() net.Addr {
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	return r.adminAddr
}

// Config returns the configuration in force (it changes on Reload).
func (r *Router) Config() *Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg
}

// scratch is per-Emit working memory, pooled so Emit does not allocate.
type scratch struct {
	per     [][]*event.Event // per output index
	outs    []int
	matched []int
	routeN  []int
}

// Emit implements inputs.Sink: route each event with the routing state in
// force when Emit is called, then append it to the queue of every output
// chosen. Safe for concurrent use by all inputs and with Reload.
func (r *Router) Emit(ctx context.Context, evs []*event.Event) error {
	if r.closing.Load() {
		return inputs.ErrClosed
	}
	for {
		s := r.state.Load()
		s.mu.RLock()
		if s.retired { // replaced between Load and RLock: use the new one
			s.mu.RUnlock()
			continue
		}
		err := r.emit(ctx, s, evs)
		s.mu.RUnlock()
		return err
	}
}

func (r *Router) emit(ctx context.Context, st *state, evs []*event.Event) error {
	t := st.table
	s := st.scratch.Get().(*scratch)
	defer st.scratch.Put(s)
	var unmatched, dropRoute, dropUnmatched int
	for _, ev := range evs {
		var um bool
		s.outs, s.matched, um = t.Route(ev, s.outs[:0], s.matched[:0])
		for _, m := range s.matched {
			s.routeN[m]++
		}
		if um {
			unmatched++
		}
		if len(s.outs) == 0 {
			if um {
				dropUnmatched++
			} else {
				dropRoute++
			}
			continue
		}
		for _, o := range s.outs {
			s.per[o] = append(s.per[o], ev)
		}
	}
	for i, n := range s.routeN {
		if n > 0 {
			st.routeC[i].Add(float64(n))
			s.routeN[i] = 0
		}
	}
	if unmatched > 0 {
		r.metrics.unmatched.Add(float64(unmatched))
	}
	if dropRoute > 0 {
		r.dropC[0].Add(float64(dropRoute))
	}
	if dropUnmatched > 0 {
		r.dropC[1].Add(float64(dropUnmatched))
	}
	// Every chosen output gets its events even if another output's queue
	// fails: one broken disk must not starve the healthy outputs.
	var errs []error
	for i, list := range s.per {
		if len(list) == 0 {
			continue
		}
		o := st.outs[i]
		dropped, err := o.append(ctx, list)
		if dropped > 0 {
			r.metrics.outDropped.WithLabelValues(o.spec.Name, "queue_full").Add(float64(dropped))
		}
		if errors.Is(err, ErrQueueClosed) {
			if o.removed.Load() {
				// Routed by a configuration that a reload replaced, to an
				// output it removed whose queue stayed full past the grace
				// period: counted, and not the input's failure.
				r.metrics.outDropped.WithLabelValues(o.spec.Name, "removed").Add(float64(len(list)))
				err = nil
			} else {
				err = inputs.ErrClosed
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("output %q: %w", o.spec.Name, err))
		}
		clear(list) // do not pin events in the pool
		s.per[i] = list[:0]
	}
	return errors.Join(errs...)
}

// Run starts everything and blocks until ctx is cancelled or an input fails,
// then shuts down: inputs stop, queues drain to the outputs for at most
// shutdown_timeout, outputs close. It returns the first input or startup
// error (nil after a clean, requested shutdown). Run is called once.
func (r *Router) Run(ctx context.Context) error {
	r.mu.Lock()
	if err := r.start(ctx); err != nil {
		r.mu.Unlock()
		return err
	}
	cfg := r.cfg
	r.mu.Unlock()
	go r.waitReady(r.ictx, cfg)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-r.inErr:
		r.log.Error("input failed; shutting down", "err", runErr)
	}
	r.shutdown()
	if runErr == nil {
		select {
		case runErr = <-r.inErr:
		default:
		}
	}
	r.log.Info("stopped")
	return runErr
}

// start opens the outputs and their queues, the admin listener, the
// workers and the inputs. On error everything opened is closed again.
// Called with r.mu held.
func (r *Router) start(ctx context.Context) error {
	cfg := r.cfg
	if err := r.register(); err != nil {
		return err
	}
	for _, in := range cfg.Inputs {
		if err := os.MkdirAll(in.StateDir, 0o750); err != nil {
			return fmt.Errorf("input %q: creating state dir: %w", in.Name, err)
		}
	}
	var opened []*liveOutput
	undo := func() {
		for _, o := range opened {
			if o.q != nil {
				if err := o.q.Close(); err != nil {
					r.log.Error("closing queue", "output", o.spec.Name, "err", err)
				}
			}
			if err := o.spec.Output.Close(); err != nil {
				r.log.Error("closing output", "output", o.spec.Name, "err", err)
			}
		}
	}
	for _, lo := range r.state.Load().outs {
		o := lo.spec
		if err := os.MkdirAll(o.StateDir, 0o750); err != nil {
			undo()
			return fmt.Errorf("output %q: creating state dir: %w", o.Name, err)
		}
		if op, ok := o.Output.(outputs.Opener); ok {
			if err := op.Open(ctx); err != nil {
				undo()
				return fmt.Errorf("output %q: %w", o.Name, err)
			}
		}
		opened = append(opened, lo)
	}
	for _, lo := range opened {
		q, err := r.openQueue(lo.spec)
		if err != nil {
			undo()
			return err
		}
		lo.q = q
		close(lo.ready)
	}

	if cfg.AdminListen != "" {
		ln, err := net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			undo()
			return fmt.Errorf("admin listener: %w", err)
		}
		r.adminMu.Lock()
		r.adminAddr = ln.Addr()
		r.adminMu.Unlock()
		admin := &http.Server{Handler: r.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.log.Error("admin listener stopped", "err", err)
			}
		}()
		r.adminSrv = admin
		r.log.Info("admin listening", "addr", ln.Addr().String())
	}

	// Workers run under their own context: they keep draining after ctx ends.
	wctx, wcancel := context.WithCancel(context.Background())
	r.wctx, r.wcancel = wctx, wcancel
	for _, lo := range opened {
		r.startWorker(lo)
	}
	ictx, icancel := context.WithCancel(ctx)
	r.ictx, r.icancel = ictx, icancel
	r.inErr = make(chan error, len(cfg.Inputs))
	for _, in := range cfg.Inputs {
		r.startInput(in, true)
	}
	r.running = true
	return nil
}

// startWorker starts lo's worker under r.wctx.
func (r *Router) startWorker(lo *liveOutput) {
	hard, halt := context.WithCancel(r.wctx)
	soft, stop := context.WithCancel(hard)
	lo.halt, lo.stop, lo.done = halt, stop, make(chan struct{})
	w := newWorker(lo.spec, lo.q, r.metrics, r.log.With("output", lo.spec.Name))
	r.wwg.Go(func() {
		defer close(lo.done)
		defer halt()
		if lo.unopened && !r.reopen(soft, lo.spec) {
			return
		}
		if err := w.run(hard, soft); err != nil && !errors.Is(err, context.Canceled) {
			r.log.Error("output worker stopped", "output", lo.spec.Name, "err", err)
		}
	})
}

// reopen opens o until it succeeds, waiting the output's retry backoff
// between attempts; false if ctx ended first.
func (r *Router) reopen(ctx context.Context, o *OutputSpec) bool {
	backoff := o.Retry.Initial
	for {
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		err := r.openOutput(ctx, o)
		if err == nil {
			r.log.Info("output opened", "output", o.Name)
			return true
		}
		r.log.Warn("output still fails to open; retrying", "output", o.Name, "in", backoff, "err", err)
		backoff = min(backoff*2, o.Retry.Max)
	}
}

// startInput runs in under r.ictx. The failure of an input started by Run
// (fatal) shuts the daemon down; one started by a reload is logged.
func (r *Router) startInput(in *InputSpec, fatal bool) *liveInput {
	ctx, cancel := context.WithCancel(r.ictx)
	li := &liveInput{spec: in, cancel: cancel, done: make(chan struct{})}
	r.ins[in.Name] = li
	r.iwg.Go(func() {
		defer close(li.done)
		defer cancel()
		if err := in.Input.Run(ctx, r); err != nil {
			err = fmt.Errorf("input %q: %w", in.Name, err)
			if fatal {
				r.inErr <- err
				return
			}
			r.log.Error("input started by a reload failed", "input", in.Name, "err", err)
			r.reloadG.inputFailures.Inc()
			li.err = err
		}
	})
	return li
}

// shutdown stops everything, in order: inputs stop first and flush what
// they already read (Emit still accepts while there is room); only then
// are new events refused, and the queues drain for at most
// shutdown_timeout.
func (r *Router) shutdown() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running = false
	r.notify("STOPPING=1")
	cfg := r.cfg
	r.log.Info("shutting down", "drain_timeout", cfg.ShutdownTimeout)
	r.draining.Store(true)
	r.icancel()
	r.iwg.Wait()
	r.closing.Store(true)
	outs := r.state.Load().outs
	for _, o := range outs {
		o.q.CloseAppend()
	}
	drained := make(chan struct{})
	go func() { r.wwg.Wait(); close(drained) }()
	t := time.NewTimer(cfg.ShutdownTimeout)
	select {
	case <-drained:
		t.Stop()
	case <-t.C:
		r.log.Warn("shutdown timeout reached; abandoning undelivered events")
		r.wcancel()
		<-drained
	}
	for _, o := range outs {
		r.retireQueue(o, "shutdown")
		if err := o.spec.Output.Close(); err != nil {
			r.log.Error("closing output", "output", o.spec.Name, "err", err)
		}
	}
	if r.adminSrv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = r.adminSrv.Shutdown(sctx)
		scancel()
	}
	r.wcancel()
}

// retireQueue reports what is left in o's queue (kept on disk, or lost
// from memory and counted with reason) and closes it. The worker has
// stopped.
func (r *Router) retireQueue(o *liveOutput, reason string) {
	if n, _ := o.q.Len(); n > 0 {
		if o.spec.Queue.Type == "disk" {
			r.log.Info("undelivered events stay in the disk queue for the next start", "output", o.spec.Name, "events", n)
		} else {
			r.metrics.outDropped.WithLabelValues(o.spec.Name, reason).Add(float64(n))
			r.log.Error("events left in a memory queue were lost", "output", o.spec.Name, "events", n, "reason", reason)
		}
	}
	if err := o.q.Close(); err != nil {
		r.log.Error("closing queue", "output", o.spec.Name, "err", err)
	}
}

func (r *Router) waitReady(ctx context.Context, cfg *Config) {
	for _, in := range cfg.Inputs {
		if rd, ok := in.Input.(inputs.Readier); ok {
			select {
			case <-rd.Ready():
			case <-ctx.Done():
				return
			}
		}
	}
	close(r.ready)
	r.notify("READY=1\nSTATUS=serving")
	r.log.Info("ready", "inputs", len(cfg.Inputs), "outputs", len(cfg.Outputs), "routes", len(cfg.Routes))
}

func (r *Router) register() error {
	if err := r.metrics.register(r.reg); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "sluice", Name: "build_info",
		Help: "Always 1; the version label is the running build."}, []string{"version"})
	build.WithLabelValues(r.version).Set(1)
	for _, c := range []prometheus.Collector{build, &queueCollector{r: r}} {
		if err := r.reg.Register(c); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}
	if err := r.reloadG.register(r.reg); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	for _, in := range r.cfg.Inputs {
		if err := r.registerPlugin(in.Input); err != nil {
			return fmt.Errorf("registering metrics of input %q: %w", in.Name, err)
		}
	}
	for _, o := range r.cfg.Outputs {
		if err := r.registerPlugin(o.Output); err != nil {
			return fmt.Errorf("registering metrics of output %q: %w", o.Name, err)
		}
	}
	return nil
}

func (r *Router) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, _ *http.Request) {
		if err := r.Reload(); err != nil {
			code := http.StatusInternalServerError
			var re *ReloadError
			if errors.As(err, &re) {
				code = http.StatusBadRequest
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.Write([]byte("reloaded\n"))
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-r.ready:
			if !r.draining.Load() {
				w.Write([]byte("ready\n"))
				return
			}
		default:
		}
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	})
	return mux
}

// queueCollector reports queue depth at scrape time.
type queueCollector struct{ r *Router }

// spoolDescs are the disk-queue metrics, read from spool.Stats at scrape.
var spoolDescs = struct {
	oldest, appended, acked, dropped, truncated, quarantined, lost, fsyncs, lastFsync, writeErr, backlog, replay, fsyncTime *prometheus.Desc
}{
	fsyncTime:   prometheus.NewDesc("sluice_spool_fsync_seconds_total", "Total time spent in fdatasync on a disk queue's segments (divide by sluice_spool_fsyncs_total for the mean).", []string{"output"}, nil),
	backlog:     prometheus.NewDesc("sluice_spool_backlog_events", "Events of a live-first disk queue's backlog still to read (0 when it holds no backlog; always 0 for fifo).", []string{"output"}, nil),
	replay:      prometheus.NewDesc("sluice_spool_replay_events_total", "Events a live-first disk queue handed out while it held a backlog, by part (live, backlog).", []string{"output", "part"}, nil),
	oldest:      prometheus.NewDesc("sluice_spool_oldest_event_age_seconds", "Age of the oldest unacknowledged event in a disk queue (0 when empty).", []string{"output"}, nil),
	appended:    prometheus.NewDesc("sluice_spool_appended_total", "Events appended to a disk queue since start.", []string{"output"}, nil),
	acked:       prometheus.NewDesc("sluice_spool_acked_total", "Events acknowledged (delivered or dropped) from a disk queue since start.", []string{"output"}, nil),
	dropped:     prometheus.NewDesc("sluice_spool_dropped_total", "Events a full disk queue dropped (when_full = \"drop_newest\").", []string{"output"}, nil),
	truncated:   prometheus.NewDesc("sluice_spool_truncated_bytes_total", "Bytes of torn tail cut off when the disk queue was opened.", []string{"output"}, nil),
	quarantined: prometheus.NewDesc("sluice_spool_quarantined_bytes_total", "Damaged bytes moved aside (*.corrupt) when the disk queue was opened.", []string{"output"}, nil),
	lost:        prometheus.NewDesc("sluice_spool_lost_events_total", "Events found missing or damaged in a disk queue (reported, never silent).", []string{"output"}, nil),
	fsyncs:      prometheus.NewDesc("sluice_spool_fsyncs_total", "fdatasync calls on a disk queue's segments.", []string{"output"}, nil),
	lastFsync:   prometheus.NewDesc("sluice_spool_last_fsync_seconds", "Duration of a disk queue's latest fdatasync.", []string{"output"}, nil),
	writeErr:    prometheus.NewDesc("sluice_spool_write_error", "1 while a disk queue has a sticky write error (it refuses appends), else 0.", []string{"output"}, nil),
}

var (
	queueEventsDesc = prometheus.NewDesc("sluice_output_queue_events", "Events held in an output's queue, including the batch in flight.", []string{"output"}, nil)
	queueBytesDesc  = prometheus.NewDesc("sluice_output_queue_bytes", "Estimated memory of the events held in an output's queue: raw bytes plus 256 per event and 320 per structured-data element.", []string{"output"}, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueEventsDesc
	ch <- queueBytesDesc
	d := spoolDescs
	for _, desc := range []*prometheus.Desc{d.oldest, d.appended, d.acked, d.dropped, d.truncated, d.quarantined, d.lost, d.fsyncs, d.lastFsync, d.writeErr, d.backlog, d.replay, d.fsyncTime} {
		ch <- desc
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	for _, o := range c.r.state.Load().outs {
		q := o.queue()
		if q == nil {
			continue
		}
		n, b := q.Len()
		name := o.spec.Name
		ch <- prometheus.MustNewConstMetric(queueEventsDesc, prometheus.GaugeValue, float64(n), name)
		ch <- prometheus.MustNewConstMetric(queueBytesDesc, prometheus.GaugeValue, float64(b), name)
		if dq, ok := q.(*diskQueue); ok {
			collectSpool(ch, dq.q.Stats(), name)
			ch <- prometheus.MustNewConstMetric(spoolDescs.backlog, prometheus.GaugeValue, float64(dq.backlogLeft.Load()), name)
			if dq.liveFirst {
				ch <- prometheus.MustNewConstMetric(spoolDescs.replay, prometheus.CounterValue, float64(dq.replayLive.Load()), name, "live")
				ch <- prometheus.MustNewConstMetric(spoolDescs.replay, prometheus.CounterValue, float64(dq.replayBack.Load()), name, "backlog")
			}
		}
	}
}

func collectSpool(ch chan<- prometheus.Metric, st spool.Stats, name string) {
	d := spoolDescs
	age := 0.0
	if !st.OldestAppended.IsZero() {
		age = time.Since(st.OldestAppended).Seconds()
	}
	werr := 0.0
	if st.WriteErr != nil {
		werr = 1
	}
	for _, m := range []struct {
		desc *prometheus.Desc
		typ  prometheus.ValueType
		v    float64
	}{
		{d.oldest, prometheus.GaugeValue, age},
		{d.appended, prometheus.CounterValue, float64(st.Appended)},
		{d.acked, prometheus.CounterValue, float64(st.Acked)},
		{d.dropped, prometheus.CounterValue, float64(st.Dropped)},
		{d.truncated, prometheus.CounterValue, float64(st.TruncatedBytes)},
		{d.quarantined, prometheus.CounterValue, float64(st.QuarantinedBytes)},
		{d.lost, prometheus.CounterValue, float64(st.LostRecords)},
		{d.fsyncs, prometheus.CounterValue, float64(st.Fsyncs)},
		{d.lastFsync, prometheus.GaugeValue, st.LastFsync.Seconds()},
		{d.fsyncTime, prometheus.CounterValue, st.FsyncTime.Seconds()},
		{d.writeErr, prometheus.GaugeValue, werr},
	} {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.v, name)
	}
}

// RegisterRuntimeMetrics adds the Go runtime and process collectors to reg.
func RegisterRuntimeMetrics(reg prometheus.Registerer) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

func splitHostPort(addr string) (string, string, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("invalid listen address %q: %w", addr, err)
	}
	if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
		return "", "", fmt.Errorf("invalid listen address %q: port must be a number from 0 to 65535", addr)
	}
	return h, p, nil
}
