// Package outputs defines the contract between the router and its output
// plugins (archive, zmq, http): the Output interface and the Type that ties a
// plugin's config struct to its constructor.
//
// Plugins import this package and router/event only, never the router.
// Batching, retries, queueing and metrics are the router's job.
package outputs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicelog/sluice/router/event"
)

// ErrPermanent marks a delivery failure that retrying cannot fix (a
// destination that rejects the data itself). The router drops such a batch
// and counts it. Wrap it: fmt.Errorf("%w: status %d", outputs.ErrPermanent, code).
var ErrPermanent = errors.New("permanent delivery failure")

// Output delivers batches of events to one destination.
//
// The router's worker for the output is the only caller: Write is never
// called concurrently, and never after Close.
type Output interface {
	// Write delivers evs. It returns nil only if the destination accepted the
	// whole batch; the router then acknowledges the batch in the queue. Any
	// other error is retried with backoff (the same batch again), except
	// errors wrapping ErrPermanent, which are dropped and counted. An output
	// must tolerate getting a batch again that it partly wrote before failing
	// (delivery is at least once). Implementations reconnect lazily inside
	// Write. ctx is cancelled at forced shutdown.
	Write(ctx context.Context, evs []*event.Event) error

	// Close flushes buffered data and releases resources. It is called once,
	// after the last Write.
	Close() error
}

// An Output that also implements prometheus.Collector has its metrics
// registered on the daemon's registry by the router before the first Write
// (label them with the output's name). Collectors must be safe to scrape
// concurrently with Write.

// RetryAfterError wraps a retryable failure with the delay the destination
// asked for (an HTTP Retry-After, for example). The router waits at least
// After, capped at the output's retry.max, before the next attempt.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// Opener is implemented by outputs that acquire resources or repair state
// before the first Write (for example the archive truncating a torn gzip
// tail after a crash). The router calls Open once, before any Write; an
// error stops the daemon from starting.
type Opener interface {
	Open(ctx context.Context) error
}

// Claimer is implemented by outputs that write to resources no other output
// may share (for example the files of an archive path template). The config
// loader rejects two outputs that claim the same string.
type Claimer interface {
	Claims() []string
}

// Env carries the per-instance dependencies of an output.
type Env struct {
	Name     string       // block name, e.g. "cold"
	Logger   *slog.Logger // already carries component=output, output=<name>, type=<type>
	StateDir string       // a directory this output may keep state in (created by the router)
}

// Type ties a plugin's config struct to its constructor. Build one with NewType.
type Type struct {
	newConfig func() any
	build     func(cfg any, env Env) (Output, error)
}

// NewType registers a plugin: see inputs.NewType for the contract of
// defaults and build.
func NewType[C any](defaults func() *C, build func(cfg *C, env Env) (Output, error)) Type {
	return Type{
		newConfig: func() any { return defaults() },
		build:     func(cfg any, env Env) (Output, error) { return build(cfg.(*C), env) },
	}
}

// NewConfig returns a fresh config struct (a pointer) with defaults set.
func (t Type) NewConfig() any { return t.newConfig() }

// Build validates cfg and constructs the output.
func (t Type) Build(cfg any, env Env) (Output, error) { return t.build(cfg, env) }

// PartialError reports that the destination accepted a batch except for
// Rejected events it can never accept (for example an archive path the
// filesystem refuses). It is ErrPermanent for those events only: the router
// acknowledges the batch, counts Rejected as dropped (reason "permanent")
// and logs Err. Rejected must be between 1 and the batch length.
type PartialError struct {
	Rejected int
	Err      error
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("%d events rejected permanently: %v", e.Rejected, e.Err)
}

func (e *PartialError) Unwrap() error { return e.Err }
