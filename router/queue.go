package router

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sluicelog/sluice/router/event"
)

// ErrQueueClosed is returned by Queue.Read once the queue is closed for
// appends and empty, and by Append after CloseAppend.
var ErrQueueClosed = errors.New("queue closed")

// Queue holds one output's pending events between the router (the only
// appender, called from many input goroutines) and the output's worker (the
// only reader). The durable disk queue implements the same interface.
//
// Delivery contract: Read hands out events after the last batch read and
// keeps them until Ack; the worker retries a failed batch itself, so Read
// never returns the same events twice within one process.
type Queue interface {
	// Append adds evs. Under when_full = "block" it waits for room until
	// ctx ends (returning ctx.Err(); events appended before that stay); under
	// "drop_newest" it appends what fits and returns how many it dropped.
	// Safe for concurrent use.
	Append(ctx context.Context, evs []*event.Event) (dropped int, err error)
	// Read waits until at least one event is available, then collects up to
	// lim.MaxEvents events / lim.MaxBytes bytes (eventSize), waiting at most
	// lim.MaxWait for the batch to fill. It returns ctx.Err() if ctx ends
	// while it waits with nothing, and ErrQueueClosed when closed and empty.
	// Only the worker calls Read.
	Read(ctx context.Context, lim BatchConfig) (Batch, error)
	// Ack removes a batch returned by Read (in order) once delivered or dropped.
	Ack(b Batch) error
	// Unread gives back b, the batch the worker holds (the latest Read,
	// not acknowledged): the next Read hands out its events again. The
	// worker calls it when it stops with a batch undelivered (a reload
	// restarting its output, a forced shutdown), so the next worker on this
	// queue delivers it.
	Unread(b Batch)
	// Len reports the events and raw bytes held (read but unacked included).
	Len() (events int, bytes int64)
	// CloseAppend refuses further appends and wakes the reader, which drains
	// what is left and then gets ErrQueueClosed.
	CloseAppend()
	// Close releases the queue (a disk queue persists its acknowledgements
	// and unlocks its directory). Called once, after the worker stopped.
	Close() error
}

// Batch is a run of events handed out by Queue.Read. First and Last are
// the sequence numbers of a disk queue's records (zero for memory queues);
// Events may be shorter than Last-First+1 if a record could not be decoded.
type Batch struct {
	Events      []*event.Event
	Bytes       int64
	First, Last uint64
}

// eventSize is what an event counts against max_size: its raw bytes plus
// an estimate of the struct and its parsed fields (measured: ~250 bytes for
// a parsed RFC 5424 event, ~300 more for a structured-data element).
func eventSize(ev *event.Event) int64 {
	n := int64(len(ev.Raw)) + eventOverhead
	if ev.SD != nil {
		n += sdOverhead * int64(len(ev.SD))
	}
	return n
}

const (
	eventOverhead = 256
	sdOverhead    = 320
)

// memQueue is the in-memory Queue: a ring of event pointers bounded by
// events and bytes. Events in it are lost if the process dies.
type memQueue struct {
	maxEvents int
	maxBytes  int64
	dropNew   bool

	mu     sync.Mutex
	ring   []*event.Event
	head   int   // index of the oldest held event
	n      int   // events held (unread + read-unacked)
	read   int   // of those, already handed out by Read
	bytes  int64 // raw bytes held
	closed bool

	dataCh chan struct{} // signalled (non-blocking) when events arrive or on close
	// spaceCh is closed (and replaced) by Ack and CloseAppend: a broadcast
	// to every appender waiting for room. Guarded by mu.
	spaceCh chan struct{}

	appendWaits int // times an appender waited for room (tests)
}

func newMemQueue(c QueueConfig) *memQueue {
	return &memQueue{
		maxEvents: c.MaxEvents,
		maxBytes:  c.MaxBytes,
		dropNew:   c.WhenFull == "drop_newest",
		ring:      make([]*event.Event, c.MaxEvents),
		dataCh:    make(chan struct{}, 1),
		spaceCh:   make(chan struct{}),
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (q *memQueue) Append(ctx context.Context, evs []*event.Event) (int, error) {
	for len(evs) > 0 {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return 0, ErrQueueClosed
		}
		added := 0
		for _, ev := range evs {
			sz := eventSize(ev)
			// An event larger than max_size on its own is accepted into an
			// empty queue, so it can never wedge the pipeline.
			if q.n == q.maxEvents || (q.n > 0 && q.bytes+sz > q.maxBytes) {
				break
			}
			q.ring[(q.head+q.n)%len(q.ring)] = ev
			q.n++
			q.bytes += sz
			added++
		}
		space := q.spaceCh // captured under mu: an Ack after Unlock closes it
		if added < len(evs) && !q.dropNew {
			q.appendWaits++
		}
		q.mu.Unlock()
		if added > 0 {
			signal(q.dataCh)
		}
		evs = evs[added:]
		if len(evs) == 0 {
			return 0, nil
		}
		if q.dropNew {
			return len(evs), nil
		}
		select {
		case <-space:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return 0, nil
}

// wakeAppenders wakes every appender waiting for room. Call with mu held.
func (q *memQueue) wakeAppenders() {
	close(q.spaceCh)
	q.spaceCh = make(chan struct{})
}

func (q *memQueue) Read(ctx context.Context, lim BatchConfig) (Batch, error) {
	var timer <-chan struct{}
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	var b Batch
	for {
		q.mu.Lock()
		for q.read < q.n && len(b.Events) < lim.MaxEvents {
			ev := q.ring[(q.head+q.read)%len(q.ring)]
			sz := eventSize(ev)
			if len(b.Events) > 0 && b.Bytes+sz > lim.MaxBytes {
				break
			}
			b.Events = append(b.Events, ev)
			b.Bytes += sz
			q.read++
		}
		full := len(b.Events) >= lim.MaxEvents || (len(b.Events) > 0 && q.read < q.n)
		closed := q.closed
		q.mu.Unlock()
		if full || (closed && len(b.Events) > 0) || (len(b.Events) > 0 && lim.MaxWait == 0) {
			return b, nil
		}
		if closed {
			return b, ErrQueueClosed
		}
		if len(b.Events) > 0 && timer == nil {
			ch := make(chan struct{})
			t := time.AfterFunc(lim.MaxWait, func() { close(ch) })
			timer, stop = ch, t.Stop
		}
		select {
		case <-q.dataCh:
		case <-timer:
			return b, nil
		case <-ctx.Done():
			if len(b.Events) > 0 {
				return b, nil
			}
			return b, ctx.Err()
		}
	}
}

func (q *memQueue) Ack(b Batch) error {
	q.mu.Lock()
	k := len(b.Events)
	if k > q.read {
		q.mu.Unlock()
		return errors.New("ack of events never read")
	}
	for i := 0; i < k; i++ {
		q.ring[(q.head+i)%len(q.ring)] = nil
	}
	q.head = (q.head + k) % len(q.ring)
	q.n -= k
	q.read -= k
	q.bytes -= b.Bytes
	if k > 0 {
		q.wakeAppenders()
	}
	q.mu.Unlock()
	return nil
}

func (q *memQueue) Unread(b Batch) {
	q.mu.Lock()
	q.read = max(0, q.read-len(b.Events))
	q.mu.Unlock()
	signal(q.dataCh)
}

func (q *memQueue) Len() (int, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n, q.bytes
}

func (q *memQueue) Close() error { return nil }

func (q *memQueue) CloseAppend() {
	q.mu.Lock()
	q.closed = true
	q.wakeAppenders()
	q.mu.Unlock()
	signal(q.dataCh)
}
