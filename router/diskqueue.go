package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicelog/sluice/router/event"
	"github.com/sluicelog/sluice/spool"
)

// diskQueue is the durable Queue: events are encoded with the binary event
// codec into a spool.Queue of byte records under spool.dir/<output>.
//
// Every event is written to the spool; a reader that keeps up is served
// from memory instead of reading the records back: recent appends stay in
// a fixed ring indexed by sequence number, and Read takes events from it
// while the ring holds the next sequence number. Anything else — the
// backlog after a restart, events the ring has already overwritten, or
// records of a concurrent Append not yet in the ring — is read from the
// spool. The ring only saves work; what is delivered and acknowledged is
// the same either way.
//
// Delivery contract: Append returns once the records are written under the
// queue's fsync policy; Read hands out records after its cursor (which
// starts at the first unacknowledged record after Open, so a restart
// redelivers everything not acknowledged); Ack acknowledges a batch's
// sequence range.
type diskQueue struct {
	q      *spool.Queue
	log    *slog.Logger
	cursor uint64 // next seq to read; only the worker touches it

	ringMu sync.Mutex
	ring   [ringSize]ringEntry

	notify chan struct{} // signalled after each Append, and by CloseAppend
	closed atomic.Bool

	readPos atomic.Uint64 // cursor, published for Append (which fills the ring only near it)

	memReads, diskReads atomic.Uint64 // batches served from the ring / the spool (tests)
}

type ringEntry struct {
	seq uint64
	ev  *event.Event
}

// ringSize bounds the events kept in memory for a caught-up reader
// (about 5 MiB of typical events).
const ringSize = 8192

// openDiskQueue opens (and recovers) the queue in dir.
func openDiskQueue(dir string, c QueueConfig, log *slog.Logger) (*diskQueue, error) {
	seg := int64(spool.DefaultSegmentBytes)
	if c.MaxBytes > 0 && c.MaxBytes/4 < seg {
		seg = c.MaxBytes / 4 // max_size must hold at least two segments; keep four
	}
	q, err := spool.Open(spool.Options{
		Dir:          dir,
		SegmentBytes: seg,
		MaxBytes:     c.MaxBytes,
		Fsync:        c.Fsync,
		DropWhenFull: c.WhenFull == "drop_newest",
		Logger:       log,
	})
	if err != nil {
		return nil, err
	}
	first, _ := q.Bounds()
	d := &diskQueue{q: q, log: log, cursor: first, notify: make(chan struct{}, 1)}
	d.readPos.Store(first)
	return d, nil
}

func (d *diskQueue) Append(ctx context.Context, evs []*event.Event) (int, error) {
	// One buffer for the whole call; records are sliced from it afterwards
	// because appending may move it.
	buf := make([]byte, 0, len(evs)*(eventOverhead+64))
	ends := make([]int, len(evs))
	for i, ev := range evs {
		buf = ev.AppendBinary(buf)
		ends[i] = len(buf)
	}
	recs := make([][]byte, len(evs))
	start := 0
	for i, end := range ends {
		recs[i] = buf[start:end:end]
		start = end
	}
	seqs := make([]uint64, len(evs))
	dropped, err := d.q.AppendSeqs(ctx, recs, seqs)
	// Only events the reader may reach while they are in the ring are kept:
	// for an output that is down (reader stalled) the ring stops filling,
	// so it never pins memory for a backlog that is read from disk anyway.
	pos := d.readPos.Load()
	d.ringMu.Lock()
	for i, s := range seqs {
		if s != 0 && s < pos+ringSize {
			d.ring[s%ringSize] = ringEntry{seq: s, ev: evs[i]}
		}
	}
	d.ringMu.Unlock()
	signal(d.notify)
	if errors.Is(err, spool.ErrClosed) {
		err = ErrQueueClosed
	}
	return dropped, err
}

// gather appends to b the events the ring holds from d.cursor on, up to
// next (exclusive) and lim, advancing d.cursor. It reports whether it
// stopped at a sequence number the ring does not hold.
func (d *diskQueue) gather(b *Batch, next uint64, lim BatchConfig) (miss bool) {
	d.ringMu.Lock()
	defer d.ringMu.Unlock()
	for d.cursor < next && len(b.Events) < lim.MaxEvents {
		e := d.ring[d.cursor%ringSize]
		if e.seq != d.cursor {
			return true
		}
		sz := eventSize(e.ev)
		if len(b.Events) > 0 && b.Bytes+sz > lim.MaxBytes {
			return false
		}
		if len(b.Events) == 0 {
			b.First = d.cursor
		}
		b.Events = append(b.Events, e.ev)
		b.Bytes += sz
		b.Last = d.cursor
		d.cursor++
		d.readPos.Store(d.cursor)
	}
	return false
}

func (d *diskQueue) Read(ctx context.Context, lim BatchConfig) (Batch, error) {
	var b Batch
	var timer <-chan time.Time
	for {
		_, next := d.q.Bounds()
		if d.gather(&b, next, lim) && len(b.Events) == 0 {
			return d.readSpool(ctx, lim) // the ring does not hold the cursor
		}
		full := len(b.Events) >= lim.MaxEvents || (len(b.Events) > 0 && d.cursor < next)
		if full || (len(b.Events) > 0 && lim.MaxWait == 0) {
			break
		}
		if d.closed.Load() {
			if _, next := d.q.Bounds(); d.cursor < next {
				continue // appended before the close: still to deliver
			}
			if len(b.Events) > 0 {
				break
			}
			return b, ErrQueueClosed
		}
		if len(b.Events) > 0 && timer == nil {
			t := time.NewTimer(lim.MaxWait)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-d.notify:
		case <-timer:
			d.memReads.Add(1)
			return b, nil
		case <-ctx.Done():
			if len(b.Events) > 0 {
				d.memReads.Add(1)
				return b, nil
			}
			return b, ctx.Err()
		}
	}
	d.memReads.Add(1)
	return b, nil
}

// readSpool reads a batch back from disk from the cursor. A read error
// (EMFILE, EIO, …) is logged and retried every readRetry until ctx ends:
// nothing is skipped.
func (d *diskQueue) readSpool(ctx context.Context, lim BatchConfig) (Batch, error) {
	var recs []spool.Record
	for {
		var err error
		recs, err = d.q.Read(ctx, d.cursor, lim.MaxEvents, lim.MaxBytes, lim.MaxWait)
		if errors.Is(err, spool.ErrClosed) {
			return Batch{}, ErrQueueClosed
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return Batch{}, ctx.Err()
		}
		d.log.Warn("reading the disk queue failed; retrying", "err", err, "in", readRetry)
		t := time.NewTimer(readRetry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Batch{}, ctx.Err()
		}
	}
	d.diskReads.Add(1)
	b := Batch{Events: make([]*event.Event, 0, len(recs)), First: recs[0].Seq, Last: recs[len(recs)-1].Seq}
	// Record data is ours (spool.Read hands it over): decode in place into
	// one slab of events.
	slab := make([]event.Event, len(recs))
	for i, r := range recs {
		ev := &slab[i]
		if err := ev.UnmarshalShared(r.Data); err != nil {
			// The record passed its CRC, so this is a codec bug or a
			// format from another version: skip it loudly (the batch's
			// Ack covers it, so it is not retried forever).
			d.log.Error("undecodable record in the disk queue; skipped", "seq", r.Seq, "err", err)
			continue
		}
		b.Events = append(b.Events, ev)
		b.Bytes += eventSize(ev)
	}
	d.cursor = b.Last + 1
	d.readPos.Store(d.cursor)
	return b, nil
}

const readRetry = 500 * time.Millisecond

func (d *diskQueue) Ack(b Batch) error {
	if err := d.q.Ack(b.First, b.Last); err != nil {
		return fmt.Errorf("disk queue ack [%d, %d]: %w", b.First, b.Last, err)
	}
	// Delivered events need not stay in memory (their raw bytes share
	// chunks with other events, which they would keep alive too).
	d.ringMu.Lock()
	for s := b.First; s <= b.Last && s-b.First < ringSize; s++ {
		if e := &d.ring[s%ringSize]; e.seq == s {
			*e = ringEntry{}
		}
	}
	d.ringMu.Unlock()
	return nil
}

func (d *diskQueue) Len() (int, int64) {
	st := d.q.Stats()
	return int(st.Records), st.Bytes
}

func (d *diskQueue) CloseAppend() {
	d.q.CloseAppend()
	d.closed.Store(true)
	signal(d.notify)
}

func (d *diskQueue) Close() error { return d.q.Close() }
