// Package inputs defines the contract between the router and its input
// plugins (syslog, tail, zmq): the Input interface, the Sink it emits into,
// and the Type that ties a plugin's config struct to its constructor.
//
// Plugins import this package and router/event only, never the router.
package inputs

import (
	"context"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/router/event"
)

// ErrClosed is returned by Sink.Emit once the router has begun shutting down.
var ErrClosed = errors.New("sink closed")

// Input produces events until its context is cancelled.
//
// Run blocks, calling sink.Emit, until ctx is done or the input cannot
// continue (for example its listen address is taken). It returns nil after
// cancellation and must not call sink after returning. Constructors must have
// no side effects (no sockets, no files): Run acquires resources and releases
// them before it returns.
type Input interface {
	Run(ctx context.Context, sink Sink) error
}

// Sink accepts events from an input. It is safe for concurrent use.
type Sink interface {
	// Emit routes evs and appends each to the queue of every output a route
	// chose. A nil return means the events are queued under the queue's
	// durability policy, so the input may acknowledge upstream (advance a file
	// offset, read more from a connection). Emit blocks while a target queue
	// is full, returns ctx.Err() if ctx ends first, and ErrClosed once
	// shutdown has begun. The caller must not modify evs or the events they
	// point to after the call.
	Emit(ctx context.Context, evs []*event.Event) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, evs []*event.Event) error

// Emit calls f.
func (f SinkFunc) Emit(ctx context.Context, evs []*event.Event) error { return f(ctx, evs) }

// Env carries the per-instance dependencies of an input.
type Env struct {
	Name     string       // block name, e.g. "edge"
	Logger   *slog.Logger // already carries component=input, input=<name>, type=<type>
	StateDir string       // a directory this input may keep state in (created by the router)
	Metrics  *Metrics     // counters labelled with this input's name; never nil
}

// Metrics are the per-input counters every input reports. The router creates
// them (labelled input=<name>) and registers them; inputs only increment.
type Metrics struct {
	Events        prometheus.Counter // events emitted
	Bytes         prometheus.Counter // raw bytes of emitted events
	ParseFailures prometheus.Counter // frames kept but parsed as neither RFC 5424 nor RFC 3164
	// Dropped counts data the input discarded, by reason ("oversize",
	// "bad_frame", "max_connections", "truncated", …). Use Dropped.WithLabelValues(reason).
	Dropped *prometheus.CounterVec
	// Connections is the number of currently open stream connections.
	Connections prometheus.Gauge
}

// NewDiscardMetrics returns unregistered metrics, for tests and tools.
func NewDiscardMetrics() *Metrics {
	return &Metrics{
		Events:        prometheus.NewCounter(prometheus.CounterOpts{Name: "events"}),
		Bytes:         prometheus.NewCounter(prometheus.CounterOpts{Name: "bytes"}),
		ParseFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "parse_failures"}),
		Dropped:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dropped"}, []string{"reason"}),
		Connections:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "connections"}),
	}
}

// Type ties a plugin's config struct to its constructor. Build one with NewType.
type Type struct {
	newConfig func() any
	build     func(cfg any, env Env) (Input, error)
}

// NewType registers a plugin. defaults returns a *C with every default set
// (the HCL decoder leaves absent optional attributes untouched); C carries
// only `hcl:"..."` struct tags. build validates the decoded config and
// constructs the input without side effects; it reports bad values as
// *conf.FieldError (joined with errors.Join when there are several).
func NewType[C any](defaults func() *C, build func(cfg *C, env Env) (Input, error)) Type {
	return Type{
		newConfig: func() any { return defaults() },
		build:     func(cfg any, env Env) (Input, error) { return build(cfg.(*C), env) },
	}
}

// NewConfig returns a fresh config struct (a pointer) with defaults set.
func (t Type) NewConfig() any { return t.newConfig() }

// Build validates cfg (as returned by NewConfig, then decoded) and constructs the input.
func (t Type) Build(cfg any, env Env) (Input, error) { return t.build(cfg, env) }

// An Input that also implements prometheus.Collector has its own metrics
// registered on the daemon's registry by the router before it runs (label
// them with the input's name); they must be safe to scrape concurrently.

// Readier is implemented by inputs that can tell when they are accepting
// data (listeners bound). The router reports /readyz only after every
// Readier's channel is closed. The channel is closed at most once, by Run.
type Readier interface {
	Ready() <-chan struct{}
}
