package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/sluicelog/sluice/router/event"
	"github.com/sluicelog/sluice/spool"
)

// diskQueue is the durable Queue: events are encoded with the binary event
// codec into a spool.Queue of byte records under spool.dir/<output>.
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
}

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
	return &diskQueue{q: q, log: log, cursor: first}, nil
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
	_, dropped, err := d.q.Append(ctx, recs)
	if errors.Is(err, spool.ErrClosed) {
		err = ErrQueueClosed
	}
	return dropped, err
}

func (d *diskQueue) Read(ctx context.Context, lim BatchConfig) (Batch, error) {
	recs, err := d.q.Read(ctx, d.cursor, lim.MaxEvents, lim.MaxBytes, lim.MaxWait)
	if errors.Is(err, spool.ErrClosed) {
		return Batch{}, ErrQueueClosed
	}
	if err != nil {
		return Batch{}, err
	}
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
		b.Bytes += int64(len(r.Data))
	}
	d.cursor = b.Last + 1
	return b, nil
}

func (d *diskQueue) Ack(b Batch) error {
	if err := d.q.Ack(b.First, b.Last); err != nil {
		return fmt.Errorf("disk queue ack [%d, %d]: %w", b.First, b.Last, err)
	}
	return nil
}

func (d *diskQueue) Len() (int, int64) {
	st := d.q.Stats()
	return int(st.Records), st.Bytes
}

func (d *diskQueue) CloseAppend() { d.q.CloseAppend() }

func (d *diskQueue) Close() error { return d.q.Close() }
