package router

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/router/event"
)

func evs(n int, size int) []*event.Event {
	out := make([]*event.Event, n)
	for i := range out {
		out[i] = &event.Event{Raw: make([]byte, size), Message: string(rune('a' + i%26))}
	}
	return out
}

func TestMemQueueFIFOAndAck(t *testing.T) {
	q := newMemQueue(QueueConfig{MaxEvents: 10, MaxBytes: 1 << 20, WhenFull: "block"})
	in := evs(7, 10)
	if _, err := q.Append(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	lim := BatchConfig{MaxEvents: 3, MaxBytes: 1 << 20, MaxWait: time.Millisecond}
	var got []*event.Event
	for len(got) < 7 {
		b, err := q.Read(context.Background(), lim)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Events) > 3 {
			t.Fatalf("batch of %d events exceeds max_events 3", len(b.Events))
		}
		got = append(got, b.Events...)
		if err := q.Ack(b); err != nil {
			t.Fatal(err)
		}
	}
	for i := range in {
		if got[i] != in[i] {
			t.Fatalf("event %d out of order", i)
		}
	}
	if n, b := q.Len(); n != 0 || b != 0 {
		t.Fatalf("Len after acking all = %d, %d; want 0, 0", n, b)
	}
}

func TestMemQueueBatchBytesLimit(t *testing.T) {
	q := newMemQueue(QueueConfig{MaxEvents: 100, MaxBytes: 1 << 20, WhenFull: "block"})
	q.Append(context.Background(), evs(10, 1000))
	// Each event counts 1000+eventOverhead bytes; 2.5 of them fit two.
	b, err := q.Read(context.Background(), BatchConfig{MaxEvents: 100, MaxBytes: 5 * (1000 + eventOverhead) / 2, MaxWait: time.Millisecond})
	if err != nil || len(b.Events) != 2 {
		t.Fatalf("Read = %d events, %v; want 2", len(b.Events), err)
	}
}

func TestMemQueueDropNewest(t *testing.T) {
	q := newMemQueue(QueueConfig{MaxEvents: 5, MaxBytes: 1 << 20, WhenFull: "drop_newest"})
	dropped, err := q.Append(context.Background(), evs(8, 1))
	if err != nil || dropped != 3 {
		t.Fatalf("Append = %d dropped, %v; want 3", dropped, err)
	}
	if n, _ := q.Len(); n != 5 {
		t.Fatalf("Len = %d; want 5", n)
	}
}

func TestMemQueueBlockUntilAck(t *testing.T) {
	q := newMemQueue(QueueConfig{MaxEvents: 4, MaxBytes: 1 << 20, WhenFull: "block"})
	ctx := context.Background()
	q.Append(ctx, evs(4, 1))
	done := make(chan error, 1)
	go func() { _, err := q.Append(ctx, evs(2, 1)); done <- err }()
	select {
	case <-done:
		t.Fatal("Append returned while the queue was full")
	case <-time.After(50 * time.Millisecond):
	}
	b, _ := q.Read(ctx, BatchConfig{MaxEvents: 2, MaxBytes: 1 << 20})
	q.Ack(b)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Append still blocked after Ack freed room")
	}
	if n, _ := q.Len(); n != 4 {
		t.Fatalf("Len = %d; want 4", n)
	}
}

func TestMemQueueBlockedAppendersAllWake(t *testing.T) {
	q := newMemQueue(QueueConfig{MaxEvents: 2, MaxBytes: 1 << 20, WhenFull: "block"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q.Append(ctx, evs(2, 1))
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, err := q.Append(ctx, evs(1, 1)); err != nil {
				t.Error(err)
			}
		})
	}
	total := 0
	for total < 5 {
		b, err := q.Read(ctx, BatchConfig{MaxEvents: 10, MaxBytes: 1 << 20})
		if err != nil {
			t.Fatalf("after %d events: %v", total, err)
		}
		total += len(b.Events)
		q.Ack(b)
	}
	wg.Wait()
}

func TestMemQueueAppendCancelled(t *testing.T) {
	q := newMemQueue(QueueConfig{MaxEvents: 1, MaxBytes: 1 << 20, WhenFull: "block"})
	q.Append(context.Background(), evs(1, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := q.Append(ctx, evs(1, 1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append on a full queue with an expiring ctx = %v; want DeadlineExceeded", err)
	}
}

func TestMemQueueCloseDrains(t *testing.T) {
	q := newMemQueue(QueueConfig{MaxEvents: 10, MaxBytes: 1 << 20, WhenFull: "block"})
	ctx := context.Background()
	q.Append(ctx, evs(3, 1))
	q.CloseAppend()
	if _, err := q.Append(ctx, evs(1, 1)); !errors.Is(err, ErrQueueClosed) {
		t.Fatalf("Append after CloseAppend = %v; want ErrQueueClosed", err)
	}
	b, err := q.Read(ctx, BatchConfig{MaxEvents: 10, MaxBytes: 1 << 20, MaxWait: time.Hour})
	if err != nil || len(b.Events) != 3 {
		t.Fatalf("Read after close = %d, %v; want the 3 remaining events at once", len(b.Events), err)
	}
	q.Ack(b)
	if _, err := q.Read(ctx, BatchConfig{MaxEvents: 10, MaxBytes: 1 << 20}); !errors.Is(err, ErrQueueClosed) {
		t.Fatalf("Read of closed empty queue = %v; want ErrQueueClosed", err)
	}
}

func TestMemQueueReadWaitsForBatch(t *testing.T) {
	q := newMemQueue(QueueConfig{MaxEvents: 100, MaxBytes: 1 << 20, WhenFull: "block"})
	ctx := context.Background()
	go func() {
		for range 5 {
			q.Append(ctx, evs(1, 1))
			time.Sleep(2 * time.Millisecond)
		}
	}()
	b, err := q.Read(ctx, BatchConfig{MaxEvents: 5, MaxBytes: 1 << 20, MaxWait: 5 * time.Second})
	if err != nil || len(b.Events) != 5 {
		t.Fatalf("Read = %d events, %v; want the batch to fill to 5 within max_wait", len(b.Events), err)
	}
}

func TestMemQueueOversizeEventAccepted(t *testing.T) {
	q := newMemQueue(QueueConfig{MaxEvents: 10, MaxBytes: 1024, WhenFull: "drop_newest"})
	dropped, err := q.Append(context.Background(), evs(2, 5000))
	if err != nil || dropped != 1 {
		t.Fatalf("Append = %d dropped, %v; want the first oversize event accepted into the empty queue and 1 dropped", dropped, err)
	}
}

// A queue full by bytes (not by count) must park its appenders until an
// Ack frees room, not spin.
func TestMemQueueFullByBytesWaitsIdle(t *testing.T) {
	size := int64(1000 + eventOverhead)
	q := newMemQueue(QueueConfig{MaxEvents: 1000, MaxBytes: 4 * size, WhenFull: "block"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q.Append(ctx, evs(4, 1000))
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, err := q.Append(ctx, evs(1, 1000)); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	q.mu.Lock()
	waits := q.appendWaits
	q.mu.Unlock()
	if waits > 3 {
		t.Fatalf("3 blocked appenders went round %d times in 100ms; they must wait, not spin", waits)
	}
	// Ack two: two of the three get in at once; the third after another Ack.
	b, _ := q.Read(ctx, BatchConfig{MaxEvents: 2, MaxBytes: 1 << 30})
	q.Ack(b)
	b, _ = q.Read(ctx, BatchConfig{MaxEvents: 1, MaxBytes: 1 << 30})
	q.Ack(b)
	wg.Wait()
	if n, _ := q.Len(); n != 4 {
		t.Fatalf("Len = %d; want 4 after 3 acks and 3 appends", n)
	}
}
