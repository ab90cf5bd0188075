package router

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/outputs"
)

// worker moves batches from one output's queue to the output: read a batch,
// Write it, retry retryable failures with exponential backoff and equal jitter,
// drop and count permanent ones (whole batches, or the events a
// PartialError names), then Ack. One goroutine per output.
type worker struct {
	spec    *OutputSpec
	q       Queue
	log     *slog.Logger
	sent    prometheus.Counter
	retryC  prometheus.Counter
	errRet  prometheus.Counter
	errPerm prometheus.Counter
	dropped *prometheus.CounterVec
	latency prometheus.Observer
	batchSz prometheus.Observer
}

func newWorker(spec *OutputSpec, q Queue, m *Metrics, log *slog.Logger) *worker {
	n := spec.Name
	return &worker{
		spec: spec, q: q, log: log,
		sent:    m.outSent.WithLabelValues(n),
		retryC:  m.outRetries.WithLabelValues(n),
		errRet:  m.outErrors.WithLabelValues(n, "retryable"),
		errPerm: m.outErrors.WithLabelValues(n, "permanent"),
		dropped: m.outDropped.MustCurryWith(prometheus.Labels{"output": n}),
		latency: m.latency.WithLabelValues(n),
		batchSz: m.batchSize.WithLabelValues(n),
	}
}

// run delivers until the queue is closed and drained (returns nil), or
// soft ends (the worker stops between batches, or between the attempts of
// a failing batch) or hard ends (a forced stop: a Write in progress is
// cancelled). When it stops holding an undelivered batch it gives the batch
// back with Unread, so the next worker on the queue delivers it (at least
// once: a cancelled Write may have reached the destination). It then returns
// the context's error. soft must be derived from hard.
func (w *worker) run(hard, soft context.Context) error {
	for {
		if err := soft.Err(); err != nil {
			return err // told to stop: between batches
		}
		b, err := w.q.Read(soft, w.spec.Batch)
		if errors.Is(err, ErrQueueClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		w.batchSz.Observe(float64(len(b.Events)))
		if len(b.Events) > 0 {
			if err := w.deliver(hard, soft, b); err != nil {
				w.q.Unread(b)
				return err
			}
		}
		if err := w.q.Ack(b); err != nil {
			return err
		}
	}
}

// deliver writes b until it succeeds, fails permanently, exhausts
// max_attempts (both counted as dropped; nil is returned so the batch is
// acknowledged), or the worker is told to stop: hard ends (hard.Err()), or
// soft ends before another attempt (soft.Err()).
func (w *worker) deliver(hard, soft context.Context, b Batch) error {
	backoff := w.spec.Retry.Initial
	for attempt := 1; ; attempt++ {
		err := w.spec.Output.Write(hard, b.Events)
		if err == nil {
			w.sent.Add(float64(len(b.Events)))
			oldest := b.Events[0].Received
			for _, ev := range b.Events[1:] {
				if ev.Received.Before(oldest) {
					oldest = ev.Received
				}
			}
			w.latency.Observe(time.Since(oldest).Seconds())
			return nil
		}
		if hard.Err() != nil {
			return hard.Err()
		}
		var partial *outputs.PartialError
		if errors.As(err, &partial) && partial.Rejected > 0 && partial.Rejected <= len(b.Events) {
			w.errPerm.Inc()
			w.sent.Add(float64(len(b.Events) - partial.Rejected))
			w.dropped.WithLabelValues("permanent").Add(float64(partial.Rejected))
			w.log.Error("output rejected some events permanently; they are dropped, the rest was delivered",
				"rejected", partial.Rejected, "events", len(b.Events), "err", partial.Err)
			return nil
		}
		if errors.Is(err, outputs.ErrPermanent) {
			w.errPerm.Inc()
			w.dropped.WithLabelValues("permanent").Add(float64(len(b.Events)))
			w.log.Error("output rejected a batch permanently; events dropped", "events", len(b.Events), "err", err)
			return nil
		}
		w.errRet.Inc()
		if max := w.spec.Retry.MaxAttempts; max > 0 && attempt >= max {
			w.dropped.WithLabelValues("retries_exhausted").Add(float64(len(b.Events)))
			w.log.Error("output failed; retries exhausted, events dropped", "attempts", attempt, "events", len(b.Events), "err", err)
			return nil
		}
		// Equal jitter: sleep a random duration in [backoff/2, backoff].
		sleep := backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))
		var ra *outputs.RetryAfterError
		if errors.As(err, &ra) && ra.After > sleep {
			sleep = min(ra.After, w.spec.Retry.Max)
		}
		w.log.Warn("output write failed; retrying", "attempt", attempt, "in", sleep.Round(time.Millisecond), "err", err)
		if soft.Err() != nil {
			return soft.Err()
		}
		t := time.NewTimer(sleep)
		select {
		case <-t.C:
		case <-soft.Done():
			t.Stop()
			return soft.Err()
		}
		w.retryC.Inc()
		backoff = min(backoff*2, w.spec.Retry.Max)
	}
}
