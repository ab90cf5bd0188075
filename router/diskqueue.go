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
//
// Live-first replay (replay = "live_first"): when Read finds the reader at
// least backlogMin events behind the head (after a restart, or when the
// destination comes back from an outage), everything appended so far
// becomes the backlog [bcur, split) and the cursor jumps to the head. From
// then on each Read serves live events (appended after the split) first,
// and a backlog batch whenever the backlog's part of the events read since
// live events have been waiting is below backlogShare, or when no live
// event is waiting (the backlog never idles a free destination, and that
// time is not counted against its share). Batches stay contiguous
// sequence ranges, acknowledged out of order by the spool's ack ranges, so
// a restart in the middle redelivers exactly what was not acknowledged.
// Once the backlog is gone Read is plain FIFO again.
type diskQueue struct {
	q      *spool.Queue
	log    *slog.Logger
	cursor uint64 // next seq to read (live-first: the live cursor); only the worker touches it

	liveFirst    bool
	backlogShare float64
	// Live-first state; only the worker touches it. split == 0: no backlog.
	split, bcur            uint64
	liveRead, backRead     uint64        // events read from each side since the split
	backlogLeft            atomic.Uint64 // split - bcur, for the metrics
	replayLive, replayBack atomic.Uint64 // events read from each side in live-first mode, since start

	ringMu sync.Mutex
	ring   [ringSize]ringEntry

	notify chan struct{} // signalled after each Append, and by CloseAppend
	closed atomic.Bool

	readPos atomic.Uint64 // cursor, published for Append (which fills the ring only near it)

	memReads, diskReads atomic.Uint64 // batches served from the ring / the spool (tests)

	scratch sync.Pool // *appendScratch
}

// appendScratch is Append's reusable encoding memory.
type appendScratch struct {
	buf  []byte
	ends []int
	recs [][]byte
}

// maxScratch bounds the encoding buffer kept for reuse.
const maxScratch = 4 << 20

type ringEntry struct {
	seq uint64
	ev  *event.Event
}

// ringSize bounds the events kept in memory for a caught-up reader
// (about 5 MiB of typical events).
const ringSize = 8192

// backlogMin is how far (in events) a live-first reader must be behind the
// head for the queue to count as holding a backlog: about the ring's
// reach, beyond which the events are read back from disk anyway.
const backlogMin = ringSize

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
	d := &diskQueue{q: q, log: log, cursor: first, notify: make(chan struct{}, 1),
		liveFirst: c.Replay == "live_first", backlogShare: c.BacklogShare}
	d.scratch.New = func() any { return new(appendScratch) }
	d.readPos.Store(first)
	return d, nil
}

func (d *diskQueue) Append(ctx context.Context, evs []*event.Event) (int, error) {
	// The records are encoded into pooled scratch memory: the spool copies
	// them into its own write buffer before AppendWritten returns.
	sc := d.scratch.Get().(*appendScratch)
	defer d.scratch.Put(sc)
	buf := sc.buf[:0]
	ends := sc.ends[:0]
	for _, ev := range evs {
		buf = ev.AppendBinary(buf)
		ends = append(ends, len(buf))
	}
	recs := sc.recs[:0]
	start := 0
	for _, end := range ends {
		recs = append(recs, buf[start:end:end])
		start = end
	}
	// The ring is filled as soon as the records are written — before
	// fsync under fsync = "always" — so a reader that keeps up finds them
	// in memory rather than on disk. Only events the reader may reach while
	// they are in the ring are kept: for an output that is down (reader
	// stalled) the ring stops filling, so it never pins memory for a
	// backlog that is read from disk anyway.
	dropped, err := d.q.AppendWritten(ctx, recs, func(first uint64, i, n int) {
		pos := d.readPos.Load()
		d.ringMu.Lock()
		for k := range n {
			if s := first + uint64(k); s < pos+ringSize {
				d.ring[s%ringSize] = ringEntry{seq: s, ev: evs[i+k]}
			}
		}
		d.ringMu.Unlock()
		signal(d.notify)
	})
	clear(recs) // no references into buf outlive the call
	if cap(buf) <= maxScratch {
		sc.buf, sc.ends, sc.recs = buf[:0], ends[:0], recs[:0]
	} else {
		*sc = appendScratch{}
	}
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
	if !d.liveFirst {
		return d.readFIFO(ctx, lim)
	}
	if d.split == 0 {
		if _, next := d.q.Bounds(); next-d.cursor >= backlogMin {
			d.split, d.bcur, d.liveRead, d.backRead = next, d.cursor, 0, 0
			d.backlogLeft.Store(next - d.cursor)
			d.cursor = next
			d.readPos.Store(next)
			d.log.Info("disk queue holds a backlog: delivering new events first",
				"backlog_events", next-d.bcur, "backlog_share", d.backlogShare)
		}
	}
	if d.split == 0 {
		return d.readFIFO(ctx, lim)
	}
	_, next := d.q.Bounds()
	owed := float64(d.backRead) < d.backlogShare*float64(d.liveRead+d.backRead+1)
	if d.cursor < next && !owed {
		// Live events are waiting: take what is there now rather than wait
		// for a full batch while the backlog could be moving.
		now := lim
		now.MaxWait = 0
		b, err := d.readFIFO(ctx, now)
		d.liveRead += uint64(len(b.Events))
		d.replayLive.Add(uint64(len(b.Events)))
		return b, err
	}
	if d.cursor >= next {
		// No live event waiting: the backlog has the destination to
		// itself, and that does not count against its share later.
		d.liveRead, d.backRead = 0, 0
	}
	b, err := d.readBacklog(ctx, lim)
	if err != nil || len(b.Events) > 0 || b.Last != 0 {
		return b, err
	}
	return d.readFIFO(ctx, lim) // the backlog just ran out
}

// readBacklog reads the next batch of the live-first backlog [bcur, split)
// from disk; when the backlog is exhausted it ends live-first mode and
// returns an empty Batch (Last == 0).
func (d *diskQueue) readBacklog(ctx context.Context, lim BatchConfig) (Batch, error) {
	var b Batch
	if d.bcur < d.split {
		recs, err := d.retryRead(ctx, func() ([]spool.Record, error) {
			return d.q.ReadRange(d.bcur, d.split, lim.MaxEvents, lim.MaxBytes)
		})
		if err != nil {
			return Batch{}, err
		}
		b = d.decode(recs)
	}
	if b.Last != 0 {
		d.bcur = b.Last + 1
		d.backRead += uint64(len(b.Events))
		d.replayBack.Add(uint64(len(b.Events)))
	}
	if b.Last == 0 || d.bcur >= d.split {
		// Nothing unacknowledged is left below the split.
		d.log.Info("backlog handed out: the disk queue is FIFO again", "live_events", d.liveRead, "backlog_events", d.backRead)
		d.split, d.bcur = 0, 0
	}
	d.backlogLeft.Store(d.split - d.bcur)
	return b, nil
}

// readFIFO reads the next batch at the cursor: from the ring while it holds
// the cursor, else from disk.
func (d *diskQueue) readFIFO(ctx context.Context, lim BatchConfig) (Batch, error) {
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

// readSpool reads a batch back from disk at the cursor and advances it.
func (d *diskQueue) readSpool(ctx context.Context, lim BatchConfig) (Batch, error) {
	recs, err := d.retryRead(ctx, func() ([]spool.Record, error) {
		return d.q.Read(ctx, d.cursor, lim.MaxEvents, lim.MaxBytes, lim.MaxWait)
	})
	if err != nil {
		return Batch{}, err
	}
	b := d.decode(recs)
	d.cursor = b.Last + 1
	d.readPos.Store(d.cursor)
	return b, nil
}

// retryRead calls read until it succeeds. A read error (EMFILE, EIO, …) is
// logged and retried every readRetry until ctx ends: nothing is skipped.
func (d *diskQueue) retryRead(ctx context.Context, read func() ([]spool.Record, error)) ([]spool.Record, error) {
	for {
		recs, err := read()
		if errors.Is(err, spool.ErrClosed) {
			return nil, ErrQueueClosed
		}
		if err == nil {
			return recs, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		d.log.Warn("reading the disk queue failed; retrying", "err", err, "in", readRetry)
		t := time.NewTimer(readRetry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

// decode turns records into a Batch (empty for no records). Record data is
// ours (the spool hands it over): events decode in place into one slab.
func (d *diskQueue) decode(recs []spool.Record) Batch {
	if len(recs) == 0 {
		return Batch{}
	}
	d.diskReads.Add(1)
	b := Batch{Events: make([]*event.Event, 0, len(recs)), First: recs[0].Seq, Last: recs[len(recs)-1].Seq}
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
	return b
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

// Unread moves the read position back to b.First: the cursor for a FIFO
// or live batch, the backlog cursor for a live-first backlog batch (whose
// backlog is re-established if it had just run out).
func (d *diskQueue) Unread(b Batch) {
	if b.Last == 0 { // sequence numbers start at 1: nothing read from the spool
		return
	}
	if b.Last+1 == d.cursor {
		d.cursor = b.First
		d.readPos.Store(d.cursor)
	} else {
		if d.split == 0 {
			d.split = b.Last + 1
		}
		d.bcur = b.First
		d.backRead -= min(d.backRead, uint64(b.Last-b.First+1))
		d.backlogLeft.Store(d.split - d.bcur)
	}
	signal(d.notify)
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
