package router

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/sluicelog/sluice/spool"
)

func openLiveFirst(t *testing.T, dir string, share float64) *diskQueue {
	t.Helper()
	d, err := openDiskQueue(dir, QueueConfig{Type: "disk", MaxBytes: 64 << 20, WhenFull: "block",
		Fsync: spool.FsyncPolicy{Every: time.Second}, Replay: "live_first", BacklogShare: share},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func appendN(t *testing.T, d *diskQueue, from, n int) {
	t.Helper()
	for i := from; i < from+n; i += 1000 {
		if _, err := d.Append(context.Background(), numbered(i, min(1000, from+n-i))); err != nil {
			t.Fatal(err)
		}
	}
}

// msgNum is the number of a numbered() event.
func msgNum(t *testing.T, m string) int {
	t.Helper()
	n, err := strconv.Atoi(m[1:])
	if err != nil {
		t.Fatalf("unexpected message %q", m)
	}
	return n
}

// readBatches reads and acks until want events arrived, returning each
// batch's event numbers.
func readBatches(t *testing.T, d *diskQueue, want int, lim BatchConfig) [][]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out [][]int
	for got := 0; got < want; {
		b, err := d.Read(ctx, lim)
		if err != nil {
			t.Fatalf("after %d events: %v", got, err)
		}
		if b.Last-b.First+1 != uint64(len(b.Events)) {
			t.Fatalf("batch [%d, %d] holds %d events", b.First, b.Last, len(b.Events))
		}
		var nums []int
		for _, ev := range b.Events {
			nums = append(nums, msgNum(t, ev.Message))
		}
		out = append(out, nums)
		got += len(nums)
		if err := d.Ack(b); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// After a restart with a backlog, new events go out first and the backlog
// takes its share of the deliveries; each part stays in order, every event
// comes once, and the queue is FIFO again once the backlog is gone.
func TestLiveFirstReplayShare(t *testing.T) {
	const backlog, live, after = 20_000, 40_000, 500
	for _, share := range []float64{0.2, 0.5} {
		t.Run(strconv.FormatFloat(share, 'g', -1, 64), func(t *testing.T) {
			dir := t.TempDir()
			d := openLiveFirst(t, dir, share)
			appendN(t, d, 0, backlog)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			d = openLiveFirst(t, dir, share)
			defer d.Close()
			lim := BatchConfig{MaxEvents: 100, MaxBytes: 1 << 20, MaxWait: time.Millisecond}

			// The first Read splits the queue; with nothing new yet, the
			// backlog moves at full speed.
			first := readBatches(t, d, 1, lim)
			if first[0][0] != 0 {
				t.Fatalf("first batch starts at %d; want the backlog's oldest event", first[0][0])
			}
			appendN(t, d, backlog, live)
			batches := readBatches(t, d, backlog+live-len(first[0]), lim)
			batches = append(first, batches...)
			var order []int
			for _, b := range batches {
				order = append(order, b...)
			}
			// Every event once; each part in order.
			seen := make(map[int]bool, len(order))
			lastB, lastL := -1, backlog-1
			for _, n := range order {
				if seen[n] {
					t.Fatalf("event %d delivered twice", n)
				}
				seen[n] = true
				last := &lastL
				if n < backlog {
					last = &lastB
				}
				if n != *last+1 {
					t.Fatalf("event %d after %d: a part is out of order", n, *last)
				}
				*last = n
			}
			if len(seen) != backlog+live {
				t.Fatalf("%d events delivered; want %d", len(seen), backlog+live)
			}
			// While both parts were waiting (until one of them ran out),
			// the backlog's share of the deliveries is the configured
			// one, within a batch.
			both, back := 0, 0
			for _, n := range order {
				if n == backlog-1 || n == backlog+live-1 {
					break
				}
				both++
				if n < backlog {
					back++
				}
			}
			if got := float64(back) / float64(both); math.Abs(got-share) > 0.01 {
				t.Errorf("backlog share while live events waited = %.3f (%d of %d); want %.2f", got, back, both, share)
			}
			if d.split != 0 || d.backlogLeft.Load() != 0 {
				t.Fatalf("backlog drained but split = %d, left = %d", d.split, d.backlogLeft.Load())
			}
			// Live events still lagging once the backlog is gone are the
			// next backlog (share 0.5 leaves 20k of them): either way
			// every event is counted once.
			if l, b := d.replayLive.Load(), d.replayBack.Load(); l+b != backlog+live || b < backlog {
				t.Errorf("replay counters live %d backlog %d; want a sum of %d and at least %d backlog", l, b, backlog+live, backlog)
			}
			// FIFO again.
			appendN(t, d, backlog+live, after)
			var tail []int
			for _, b := range readBatches(t, d, after, lim) {
				tail = append(tail, b...)
			}
			for i, n := range tail {
				if n != backlog+live+i {
					t.Fatalf("after the backlog: event %d is %d; want FIFO order", i, n)
				}
			}
		})
	}
}

// Killed (closed) in the middle of a live-first replay: after reopening,
// exactly the events not acknowledged are delivered.
func TestLiveFirstRestartMidReplay(t *testing.T) {
	const backlog, live = 12_000, 12_000
	dir := t.TempDir()
	d := openLiveFirst(t, dir, 0.3)
	appendN(t, d, 0, backlog)
	lim := BatchConfig{MaxEvents: 250, MaxBytes: 1 << 20}
	d.Close()
	d = openLiveFirst(t, dir, 0.3)
	appendN(t, d, backlog, 0)
	first := readBatches(t, d, 1, lim) // splits
	appendN(t, d, backlog, live)
	got := append(first, readBatches(t, d, 8000, lim)...)
	delivered := map[int]bool{}
	for _, b := range got {
		for _, n := range b {
			delivered[n] = true
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openLiveFirst(t, dir, 0.3)
	defer d.Close()
	rest := backlog + live - len(delivered)
	for _, b := range readBatches(t, d, rest, lim) {
		for _, n := range b {
			if delivered[n] {
				t.Fatalf("event %d redelivered after its batch was acknowledged", n)
			}
			delivered[n] = true
		}
	}
	if len(delivered) != backlog+live {
		t.Fatalf("%d distinct events; want %d", len(delivered), backlog+live)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if b, err := d.Read(ctx, lim); err == nil {
		t.Fatalf("extra batch [%d, %d] after everything was delivered", b.First, b.Last)
	}
}

// A short lag is not a backlog: a live-first queue stays FIFO.
func TestLiveFirstShortLagStaysFIFO(t *testing.T) {
	d := openLiveFirst(t, t.TempDir(), 0.2)
	defer d.Close()
	appendN(t, d, 0, backlogMin-1)
	checkSequence(t, readAll(t, d, backlogMin-1, testLim), 0)
	if d.replayBack.Load() != 0 || d.replayLive.Load() != 0 {
		t.Fatal("a lag below backlogMin started a live-first replay")
	}
}
