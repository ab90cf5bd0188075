package router

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/internal/sdnotify"
	"github.com/sluicelog/sluice/outputs"
)

// ReloadError is returned by Reload when the new configuration does not
// load; the old one keeps running. Text holds the diagnostics as `sluice
// validate` prints them.
type ReloadError struct {
	Diags hcl.Diagnostics
	Text  string
}

func (e *ReloadError) Error() string {
	return fmt.Sprintf("configuration has %d error(s); keeping the running one:\n%s", len(e.Diags.Errs()), e.Text)
}

// ErrNotRunning is returned by Reload before Run has started the pipeline
// or once shutdown has begun.
var ErrNotRunning = errors.New("router is not running")

type reloadMetrics struct {
	lastOK, lastOKTime prometheus.Gauge
	reloads            *prometheus.CounterVec
	inputFailures      prometheus.Counter
}

func newReloadMetrics() reloadMetrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "sluice", Name: name, Help: help})
	}
	m := reloadMetrics{
		lastOK:     g("config_last_reload_successful", "1 if the latest reload (or the start) applied its configuration, 0 if it was refused or applied with errors."),
		lastOKTime: g("config_last_reload_success_timestamp_seconds", "Unix time of the latest successful reload (or of the start)."),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "sluice", Name: "config_reloads_total",
			Help: "Reloads by result: success, invalid (the new file did not load; the old config kept running), partial (applied, but an output failed to open or a changed input failed to start)."}, []string{"result"}),
		inputFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "sluice", Name: "config_reload_input_failures_total",
			Help: "Inputs started by a reload whose Run failed (for example their port was taken); see the log."}),
	}
	m.lastOK.Set(1)
	m.lastOKTime.Set(float64(time.Now().Unix()))
	return m
}

func (m reloadMetrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.lastOK, m.lastOKTime, m.reloads, m.inputFailures} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (r *Router) registerPlugin(p any) error {
	if c, ok := p.(prometheus.Collector); ok {
		return r.reg.Register(c)
	}
	return nil
}

func (r *Router) unregisterPlugin(p any) {
	if c, ok := p.(prometheus.Collector); ok {
		r.reg.Unregister(c)
	}
}

// Reload loads Options.ConfigFile again and applies it (see apply). When
// the file does not load it returns a *ReloadError and changes nothing;
// sluice_config_last_reload_successful is 0 until a reload succeeds. Safe
// to call concurrently with everything (reloads are serialized).
func (r *Router) Reload() error {
	if r.opts.ConfigFile == "" {
		return errors.New("reload: no configuration file was given")
	}
	select {
	case <-r.Ready():
	default:
		r.log.Warn("reload refused: the daemon is still starting; try again once it is ready")
		return ErrNotRunning
	}
	if r.draining.Load() {
		return ErrNotRunning // shutting down: no RELOADING/READY after STOPPING
	}
	r.notify(sdnotify.Reloading())
	defer func() {
		if !r.draining.Load() { // no READY=1 once STOPPING=1 was sent
			r.notify("READY=1")
		}
	}()
	plugins := r.opts.Plugins
	plugins.metrics = r.metrics
	cfg, diags := LoadFile(r.opts.ConfigFile, plugins)
	if diags.HasErrors() {
		var b strings.Builder
		_ = WriteDiagnostics(&b, cfg.Files, diags)
		r.reloadG.lastOK.Set(0)
		r.reloadG.reloads.WithLabelValues("invalid").Inc()
		r.log.Error("reload refused: the configuration does not load; the running one stays",
			"config", r.opts.ConfigFile, "errors", len(diags.Errs()), "diagnostics", b.String())
		return &ReloadError{Diags: diags, Text: b.String()}
	}
	return r.apply(cfg)
}

// apply makes cfg (loaded with this router's metrics) the configuration in
// force, by name:
//
//   - Routes: the routing table is swapped atomically. An Emit uses the
//     table in force when it began, for all its events.
//   - Outputs: unchanged ones keep running untouched. Added ones are opened
//     (queue included) before the swap, so a failure there changes
//     nothing. Changed ones restart after the swap: the worker stops
//     between batches (an undelivered batch goes back to the queue), the
//     old instance closes, the new one opens and resumes from the same
//     queue. An output whose queue block changed gets a new queue: a disk
//     queue in the same directory is closed and reopened with the new
//     settings, any other combination moves the pending events over.
//     Removed ones refuse new events, drain for at most shutdown_timeout,
//     then close (a disk queue keeps what is left for a later return).
//   - Inputs: unchanged ones keep running (no connection dropped); removed
//     and changed ones stop (flushing what they read) and changed and added
//     ones start.
//
// data_dir and spool.dir cannot change while running (an error, nothing
// applied); a changed admin.listen is logged and applies at the next start.
func (r *Router) apply(cfg *Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running {
		return ErrNotRunning
	}
	old := r.cfg
	fail := func(err error) error {
		r.reloadG.lastOK.Set(0)
		r.reloadG.reloads.WithLabelValues("invalid").Inc()
		r.log.Error("reload refused; the running configuration stays", "err", err)
		return err
	}
	switch {
	case cfg.DataDir != old.DataDir:
		return fail(fmt.Errorf("data_dir changed from %q to %q: it holds the daemon's state and takes effect only at a restart", old.DataDir, cfg.DataDir))
	case cfg.SpoolDir != old.SpoolDir:
		return fail(fmt.Errorf("spool.dir changed from %q to %q: it holds the disk queues and takes effect only at a restart", old.SpoolDir, cfg.SpoolDir))
	}
	if cfg.AdminListen != old.AdminListen {
		r.log.Warn("admin.listen changed; it applies at the next start", "running", old.AdminListen, "configured", cfg.AdminListen)
		cfg.AdminListen = old.AdminListen
	}
	timeout := cfg.ShutdownTimeout

	// Plan the outputs.
	type pair struct{ old, new *liveOutput }
	var added []*liveOutput
	var restart, requeue []pair
	newOuts := make([]*liveOutput, len(cfg.Outputs))
	keep := map[string]bool{}
	for i, o := range cfg.Outputs {
		keep[o.Name] = true
		cur := r.outs[o.Name]
		switch {
		case cur == nil:
			newOuts[i] = &liveOutput{spec: o, ready: make(chan struct{})}
			added = append(added, newOuts[i])
		case sameOutput(cur.spec, o):
			newOuts[i], cfg.Outputs[i] = cur, cur.spec
		case cur.spec.Queue == o.Queue:
			newOuts[i] = &liveOutput{spec: o, q: cur.q, ready: make(chan struct{})}
			close(newOuts[i].ready)
			restart = append(restart, pair{cur, newOuts[i]})
		default:
			newOuts[i] = &liveOutput{spec: o, ready: make(chan struct{})}
			requeue = append(requeue, pair{cur, newOuts[i]})
		}
	}
	var removed []*liveOutput
	for name, cur := range r.outs {
		if !keep[name] {
			removed = append(removed, cur)
		}
	}

	// Added outputs open before anything changes, and so do the new queues
	// of changed outputs that move to another queue (a disk queue reopened
	// in the same directory can only open once the old one is closed).
	undo := func() {
		for _, o := range added {
			if o.q != nil {
				_ = o.q.Close()
				_ = o.spec.Output.Close()
			}
		}
		for _, p := range requeue {
			if p.new.q != nil {
				_ = p.new.q.Close()
			}
		}
	}
	for _, lo := range added {
		err := r.openOutput(context.Background(), lo.spec)
		if err == nil {
			lo.q, err = r.openQueue(lo.spec)
			if err != nil {
				_ = lo.spec.Output.Close()
			}
		}
		if err != nil {
			undo()
			return fail(fmt.Errorf("output %q: %w", lo.spec.Name, err))
		}
	}
	for _, p := range requeue {
		if sameQueueDir(p.old.spec, p.new.spec) {
			continue
		}
		q, err := r.openQueue(p.new.spec)
		if err != nil {
			undo()
			return fail(fmt.Errorf("output %q: %w", p.new.spec.Name, err))
		}
		p.new.q = q
	}
	for _, lo := range added {
		close(lo.ready)
	}

	// Swap the routing state; wait (bounded) for the Emits still routing
	// with the old one, then refuse appends to the queues going away.
	oldState := r.state.Swap(r.newState(cfg, newOuts))
	retired := make(chan struct{})
	go func() {
		oldState.mu.Lock()
		oldState.retired = true
		oldState.mu.Unlock()
		close(retired)
	}()
	t := time.NewTimer(timeout)
	select {
	case <-retired:
		t.Stop()
	case <-t.C:
		r.log.Warn("reload: inputs still blocked on full queues under the old routes; continuing", "waited", timeout)
	}
	for _, p := range requeue {
		p.old.next.Store(p.new)
	}
	for _, o := range removed {
		o.removed.Store(true)
		o.q.CloseAppend()
	}

	var errs []error
	for _, p := range restart {
		r.stopWorker(p.old, timeout)
		if err := r.swapOutput(p.old, p.new); err != nil {
			errs = append(errs, err)
			p.new.unopened = true
		}
		r.startWorker(p.new)
	}
	for _, p := range requeue {
		if err := r.requeue(p.old, p.new, timeout); err != nil {
			errs = append(errs, err)
		}
	}
	for _, o := range removed {
		r.removing.Store(o.spec.Name, o)
		r.wwg.Go(func() { r.drainRemoved(o, timeout) })
	}
	r.outs = map[string]*liveOutput{}
	for _, o := range newOuts {
		r.outs[o.spec.Name] = o
	}
	for _, lo := range added {
		if old, ok := r.removing.LoadAndDelete(lo.spec.Name); ok {
			r.unregisterPlugin(old.(*liveOutput).spec.Output) // still draining: its metrics give way
		}
		if err := r.registerPlugin(lo.spec.Output); err != nil {
			r.log.Warn("registering the metrics of an added output", "output", lo.spec.Name, "err", err)
		}
		r.startWorker(lo)
	}

	// Inputs.
	wantIn := map[string]*InputSpec{}
	for _, in := range cfg.Inputs {
		wantIn[in.Name] = in
	}
	for name, li := range r.ins {
		if n := wantIn[name]; n == nil || !sameInput(li.spec, n) || failed(li) {
			li.cancel()
			<-li.done
			r.unregisterPlugin(li.spec.Input)
			delete(r.ins, name)
		}
	}
	var started []*liveInput
	for i, in := range cfg.Inputs {
		if cur := r.ins[in.Name]; cur != nil {
			cfg.Inputs[i] = cur.spec
			continue
		}
		if err := os.MkdirAll(in.StateDir, 0o750); err != nil {
			errs = append(errs, fmt.Errorf("input %q: creating state dir: %w", in.Name, err))
			continue
		}
		if err := r.registerPlugin(in.Input); err != nil {
			r.log.Warn("registering the metrics of an input", "input", in.Name, "err", err)
		}
		started = append(started, r.startInput(in, false))
	}
	// An input that cannot start (its port is taken, say) fails at once:
	// give the started ones a moment, so the reload reports it.
	grace, cancelGrace := context.WithTimeout(context.Background(), inputStartGrace)
	for _, li := range started {
		select {
		case <-li.done:
			if li.err != nil {
				errs = append(errs, li.err)
			}
		case <-grace.Done():
		}
	}
	cancelGrace()

	r.cfg = cfg
	r.log.Info("configuration reloaded", "inputs", len(cfg.Inputs), "outputs", len(cfg.Outputs), "routes", len(cfg.Routes),
		"outputs_added", len(added), "outputs_restarted", len(restart)+len(requeue), "outputs_removed", len(removed))
	if r.opts.OnReload != nil {
		r.opts.OnReload(cfg)
	}
	if err := errors.Join(errs...); err != nil {
		r.reloadG.lastOK.Set(0)
		r.reloadG.reloads.WithLabelValues("partial").Inc()
		r.log.Error("reload applied with errors", "err", err)
		return err
	}
	r.reloadG.lastOK.Set(1)
	r.reloadG.lastOKTime.Set(float64(time.Now().Unix()))
	r.reloadG.reloads.WithLabelValues("success").Inc()
	return nil
}

// openOutput creates o's state directory and opens it if it is an Opener,
// for at most a minute or until ctx ends.
func (r *Router) openOutput(ctx context.Context, o *OutputSpec) error {
	if err := os.MkdirAll(o.StateDir, 0o750); err != nil {
		return fmt.Errorf("creating state dir: %w", err)
	}
	if op, ok := o.Output.(outputs.Opener); ok {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := op.Open(ctx); err != nil {
			return err
		}
	}
	return nil
}

// stopWorker stops o's worker between batches, or forces it after timeout.
func (r *Router) stopWorker(o *liveOutput, timeout time.Duration) {
	o.stop()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-o.done:
	case <-t.C:
		r.log.Warn("reload: output still writing; cancelling its write (the batch will be sent again)", "output", o.spec.Name)
		o.halt()
		<-o.done
	}
}

// swapOutput closes old's output instance and opens new's. An Open error
// is returned (and logged); new's worker then retries writing as usual.
func (r *Router) swapOutput(old, new *liveOutput) error {
	r.unregisterPlugin(old.spec.Output)
	if err := old.spec.Output.Close(); err != nil {
		r.log.Error("closing output", "output", old.spec.Name, "err", err)
	}
	if err := r.registerPlugin(new.spec.Output); err != nil {
		r.log.Warn("registering the metrics of a restarted output", "output", new.spec.Name, "err", err)
	}
	if err := r.openOutput(context.Background(), new.spec); err != nil {
		return fmt.Errorf("output %q: %w", new.spec.Name, err)
	}
	return nil
}

// requeue restarts an output whose queue settings changed. Appenders routed
// to new wait (new.ready) until the pending events are in the new queue.
func (r *Router) requeue(old, new *liveOutput, timeout time.Duration) error {
	r.stopWorker(old, timeout)
	old.q.CloseAppend()
	err := r.swapOutput(old, new)
	new.unopened = err != nil
	sameDir := sameQueueDir(old.spec, new.spec)
	if sameDir {
		if cerr := old.q.Close(); cerr != nil {
			r.log.Error("closing queue", "output", old.spec.Name, "err", cerr)
		}
	}
	q := new.q // opened before the swap unless sameDir
	if sameDir {
		var qerr error
		q, qerr = r.openQueue(new.spec)
		if qerr != nil {
			// Keep the events moving with the settings that worked.
			r.log.Error("reopening the disk queue with its new settings failed; keeping the old ones", "output", new.spec.Name, "err", qerr)
			new.spec.Queue = old.spec.Queue
			var oerr error
			if q, oerr = r.openQueue(new.spec); oerr != nil {
				// The directory cannot be opened at all: a memory queue
				// keeps the output running (what the disk queue holds
				// stays on disk); a later reload tries the disk again.
				r.log.Error("the disk queue cannot be reopened; the output runs on a memory queue until a reload or restart opens it", "output", new.spec.Name, "err", oerr)
				new.spec.Queue.Type = "memory"
				new.spec.Queue.MaxBytes = min(new.spec.Queue.MaxBytes, defaultQueueBytes)
				q = newMemQueue(new.spec.Queue)
			}
			err = errors.Join(err, qerr, oerr)
		}
	}
	new.q = q
	r.startWorker(new)
	if !sameDir {
		moved, dropped, left := moveEvents(old.q, q, timeout)
		r.log.Info("reload: moved the pending events to the output's new queue", "output", new.spec.Name, "events", moved)
		if dropped > 0 {
			r.metrics.outDropped.WithLabelValues(new.spec.Name, "queue_full").Add(float64(dropped))
			r.log.Warn("reload: the new queue (when_full = drop_newest) was too small for the pending events; the rest were dropped",
				"output", new.spec.Name, "dropped", dropped)
		}
		if left {
			r.log.Warn("reload: the new queue stayed full; the rest stays in the old one", "output", new.spec.Name)
		}
		r.retireQueue(old, "removed")
	}
	close(new.ready)
	return err
}

// moveEvents reads everything from (closed for appends) into to, for at
// most timeout; dropped counts those a drop_newest queue refused (among
// moved), left reports events it could not move.
func moveEvents(from, to Queue, timeout time.Duration) (moved, dropped int, left bool) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	lim := BatchConfig{MaxEvents: 4096, MaxBytes: 4 << 20}
	for {
		b, err := from.Read(ctx, lim)
		if err != nil {
			return moved, dropped, !errors.Is(err, ErrQueueClosed)
		}
		if len(b.Events) > 0 {
			n, err := to.Append(ctx, b.Events)
			if err != nil {
				from.Unread(b)
				return moved, dropped, true
			}
			dropped += n
		}
		moved += len(b.Events)
		if err := from.Ack(b); err != nil {
			return moved, dropped, true
		}
	}
}

// drainRemoved lets a removed output's worker deliver what its queue holds
// for at most timeout, then closes the output and the queue.
func (r *Router) drainRemoved(o *liveOutput, timeout time.Duration) {
	t := time.NewTimer(timeout)
	select {
	case <-o.done:
		t.Stop()
	case <-t.C:
		r.log.Warn("removed output did not drain in time; stopping it", "output", o.spec.Name)
		o.halt()
		<-o.done
	}
	if r.removing.CompareAndDelete(o.spec.Name, o) { // unless an output added under its name took over
		r.unregisterPlugin(o.spec.Output)
	}
	if err := o.spec.Output.Close(); err != nil {
		r.log.Error("closing output", "output", o.spec.Name, "err", err)
	}
	r.retireQueue(o, "removed")
	r.log.Info("removed output stopped", "output", o.spec.Name)
}

// inputStartGrace is how long a reload waits for the inputs it started to
// fail (a port in use, say) before it reports success.
const inputStartGrace = 500 * time.Millisecond

// failed reports whether li ended with an error (a reload restarts it).
func failed(li *liveInput) bool {
	select {
	case <-li.done:
		return li.err != nil
	default:
		return false
	}
}

// sameQueueDir reports whether a and b use a disk queue in one directory
// (which must be closed before it is opened again).
func sameQueueDir(a, b *OutputSpec) bool {
	return a.Queue.Type == "disk" && b.Queue.Type == "disk" && a.Queue.Dir == b.Queue.Dir
}

func sameOutput(a, b *OutputSpec) bool {
	return a.Type == b.Type && a.StateDir == b.StateDir && a.Queue == b.Queue && a.Batch == b.Batch &&
		a.Retry == b.Retry && reflect.DeepEqual(a.config, b.config)
}

func sameInput(a, b *InputSpec) bool {
	return a.Type == b.Type && a.StateDir == b.StateDir && reflect.DeepEqual(a.config, b.config)
}
