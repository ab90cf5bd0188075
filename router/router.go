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

// Router runs one loaded Config: it starts the outputs' queues and workers,
// then the inputs, routes what the inputs Emit, and shuts everything down in
// order when its context ends.
type Router struct {
	cfg     *Config
	log     *slog.Logger
	reg     *prometheus.Registry
	version string

	table   atomic.Pointer[rules.Table]
	queues  []Queue
	routeC  []prometheus.Counter
	dropC   [2]prometheus.Counter // route, unmatched
	scratch sync.Pool

	closing  atomic.Bool // Emit refuses new events (after the inputs stopped)
	draining atomic.Bool // shutdown began: /readyz reports 503
	ready    chan struct{}

	adminMu   sync.Mutex
	adminAddr net.Addr
}

// Options are the injected dependencies of a Router.
type Options struct {
	Logger   *slog.Logger         // nil discards
	Registry *prometheus.Registry // metrics are registered here and served on /metrics; nil = a new one
	Version  string               // reported by sluice_build_info
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
		version: opts.Version, ready: make(chan struct{})}
	r.table.Store(cfg.Table)
	nOut := len(cfg.Outputs)
	nRoutes := len(cfg.Routes)
	r.scratch.New = func() any {
		return &scratch{per: make([][]*event.Event, nOut), routeN: make([]int, nRoutes)}
	}
	for _, rs := range cfg.Routes {
		r.routeC = append(r.routeC, cfg.metrics.routeMatches.WithLabelValues(rs.Name))
	}
	r.dropC[0] = cfg.metrics.routerDropped.WithLabelValues("route")
	r.dropC[1] = cfg.metrics.routerDropped.WithLabelValues("unmatched")
	return r
}

// openQueues creates every output's queue; disk queues recover their
// directory here. On error the queues opened so far are closed.
func (r *Router) openQueues() error {
	for _, o := range r.cfg.Outputs {
		var q Queue = newMemQueue(o.Queue)
		if o.Queue.Type == "disk" {
			dq, err := openDiskQueue(o.Queue.Dir, o.Queue, r.log.With("component", "spool", "output", o.Name))
			if err != nil {
				r.closeQueues()
				return fmt.Errorf("output %q: opening its disk queue: %w", o.Name, err)
			}
			q = dq
		}
		r.queues = append(r.queues, q)
	}
	return nil
}

func (r *Router) closeQueues() {
	for i, q := range r.queues {
		if err := q.Close(); err != nil {
			r.log.Error("closing queue", "output", r.cfg.Outputs[i].Name, "err", err)
		}
	}
}

// Ready is closed once every input accepts data; /readyz follows it.
func (r *Router) Ready() <-chan struct{} { return r.ready }

// AdminAddr returns the admin listener's address once Ready (nil if none).
func (r *Router) AdminAddr() net.Addr {
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	return r.adminAddr
}

// scratch is per-Emit working memory, pooled so Emit does not allocate.
type scratch struct {
	per     [][]*event.Event // per output index
	outs    []int
	matched []int
	routeN  []int
}

// Emit implements inputs.Sink: route each event, then append it to the
// queue of every output chosen. Safe for concurrent use by all inputs.
func (r *Router) Emit(ctx context.Context, evs []*event.Event) error {
	if r.closing.Load() {
		return inputs.ErrClosed
	}
	t := r.table.Load()
	s := r.scratch.Get().(*scratch)
	defer r.scratch.Put(s)
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
			r.routeC[i].Add(float64(n))
			s.routeN[i] = 0
		}
	}
	if unmatched > 0 {
		r.cfg.metrics.unmatched.Add(float64(unmatched))
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
		dropped, err := r.queues[i].Append(ctx, list)
		if dropped > 0 {
			r.cfg.metrics.outDropped.WithLabelValues(r.cfg.Outputs[i].Name, "queue_full").Add(float64(dropped))
		}
		if errors.Is(err, ErrQueueClosed) {
			err = inputs.ErrClosed
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("output %q: %w", r.cfg.Outputs[i].Name, err))
		}
		clear(list) // do not pin events in the pool
		s.per[i] = list[:0]
	}
	err := errors.Join(errs...)
	return err
}

// Run starts everything and blocks until ctx is cancelled or an input fails,
// then shuts down: inputs stop, queues drain to the outputs for at most
// shutdown_timeout, outputs close. It returns the first input or startup
// error (nil after a clean, requested shutdown). Run is called once.
func (r *Router) Run(ctx context.Context) error {
	if err := r.register(); err != nil {
		return err
	}
	for _, in := range r.cfg.Inputs {
		if err := os.MkdirAll(in.StateDir, 0o750); err != nil {
			return fmt.Errorf("input %q: creating state dir: %w", in.Name, err)
		}
	}
	var opened []*OutputSpec
	closeOutputs := func(list []*OutputSpec) {
		for _, o := range list {
			if err := o.Output.Close(); err != nil {
				r.log.Error("closing output", "output", o.Name, "err", err)
			}
		}
	}
	for _, o := range r.cfg.Outputs {
		if err := os.MkdirAll(o.StateDir, 0o750); err != nil {
			closeOutputs(opened)
			return fmt.Errorf("output %q: creating state dir: %w", o.Name, err)
		}
		if op, ok := o.Output.(outputs.Opener); ok {
			if err := op.Open(ctx); err != nil {
				closeOutputs(opened)
				return fmt.Errorf("output %q: %w", o.Name, err)
			}
		}
		opened = append(opened, o)
	}
	if err := r.openQueues(); err != nil {
		closeOutputs(opened)
		return err
	}
	defer r.closeQueues()

	var admin *http.Server
	if r.cfg.AdminListen != "" {
		ln, err := net.Listen("tcp", r.cfg.AdminListen)
		if err != nil {
			closeOutputs(opened)
			return fmt.Errorf("admin listener: %w", err)
		}
		r.adminMu.Lock()
		r.adminAddr = ln.Addr()
		r.adminMu.Unlock()
		admin = &http.Server{Handler: r.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.log.Error("admin listener stopped", "err", err)
			}
		}()
		r.log.Info("admin listening", "addr", ln.Addr().String())
	}

	// Workers run under their own context: they keep draining after ctx ends.
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	var wwg sync.WaitGroup
	for i, o := range r.cfg.Outputs {
		w := newWorker(o, r.queues[i], r.cfg.metrics, r.log.With("output", o.Name))
		wwg.Go(func() {
			if err := w.run(wctx); err != nil && !errors.Is(err, context.Canceled) {
				r.log.Error("output worker stopped", "output", o.Name, "err", err)
			}
		})
	}

	ictx, icancel := context.WithCancel(ctx)
	defer icancel()
	var iwg sync.WaitGroup
	inErr := make(chan error, len(r.cfg.Inputs))
	for _, in := range r.cfg.Inputs {
		iwg.Go(func() {
			if err := in.Input.Run(ictx, r); err != nil {
				inErr <- fmt.Errorf("input %q: %w", in.Name, err)
			}
		})
	}
	go r.waitReady(ictx)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-inErr:
		r.log.Error("input failed; shutting down", "err", runErr)
	}

	// Shutdown, in order.
	// Inputs stop first and flush what they already read (Emit still
	// accepts while there is room); only then are new events refused.
	r.log.Info("shutting down", "drain_timeout", r.cfg.ShutdownTimeout)
	r.draining.Store(true)
	icancel()
	iwg.Wait()
	r.closing.Store(true)
	for _, q := range r.queues {
		q.CloseAppend()
	}
	drained := make(chan struct{})
	go func() { wwg.Wait(); close(drained) }()
	t := time.NewTimer(r.cfg.ShutdownTimeout)
	select {
	case <-drained:
		t.Stop()
	case <-t.C:
		r.log.Warn("shutdown timeout reached; abandoning undelivered events")
		wcancel()
		<-drained
	}
	for i, q := range r.queues {
		n, _ := q.Len()
		if n == 0 {
			continue
		}
		o := r.cfg.Outputs[i]
		if o.Queue.Type == "disk" {
			r.log.Info("undelivered events stay in the disk queue for the next start", "output", o.Name, "events", n)
			continue
		}
		r.cfg.metrics.outDropped.WithLabelValues(o.Name, "shutdown").Add(float64(n))
		r.log.Error("events left in a memory queue at shutdown were lost", "output", o.Name, "events", n)
	}
	closeOutputs(r.cfg.Outputs)
	if admin != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = admin.Shutdown(sctx)
		scancel()
	}
	if runErr == nil {
		select {
		case runErr = <-inErr:
		default:
		}
	}
	r.log.Info("stopped")
	return runErr
}

func (r *Router) waitReady(ctx context.Context) {
	for _, in := range r.cfg.Inputs {
		if rd, ok := in.Input.(inputs.Readier); ok {
			select {
			case <-rd.Ready():
			case <-ctx.Done():
				return
			}
		}
	}
	close(r.ready)
	r.log.Info("ready", "inputs", len(r.cfg.Inputs), "outputs", len(r.cfg.Outputs), "routes", len(r.cfg.Routes))
}

func (r *Router) register() error {
	if err := r.cfg.metrics.register(r.reg); err != nil {
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
	for _, in := range r.cfg.Inputs {
		if c, ok := in.Input.(prometheus.Collector); ok {
			if err := r.reg.Register(c); err != nil {
				return fmt.Errorf("registering metrics of input %q: %w", in.Name, err)
			}
		}
	}
	for _, o := range r.cfg.Outputs {
		if c, ok := o.Output.(prometheus.Collector); ok {
			if err := r.reg.Register(c); err != nil {
				return fmt.Errorf("registering metrics of output %q: %w", o.Name, err)
			}
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
	for i, q := range c.r.queues {
		n, b := q.Len()
		name := c.r.cfg.Outputs[i].Name
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
