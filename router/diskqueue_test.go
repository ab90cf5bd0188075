package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sluicelog/sluice/router/event"
	"github.com/sluicelog/sluice/spool"
)

func openTestDiskQueue(t *testing.T, dir string) *diskQueue {
	t.Helper()
	d, err := openDiskQueue(dir, QueueConfig{Type: "disk", MaxBytes: 64 << 20, WhenFull: "block",
		Fsync: spool.FsyncPolicy{Every: time.Second}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func numbered(from, n int) []*event.Event {
	out := make([]*event.Event, n)
	for i := range out {
		m := fmt.Sprintf("m%05d", from+i)
		out[i] = &event.Event{Message: m, Raw: []byte("<13>1 - h a - - - " + m), Facility: 1, Severity: 5}
	}
	return out
}

// readAll reads and acks until want events arrived; it returns their messages.
func readAll(t *testing.T, d *diskQueue, want int, lim BatchConfig) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < want {
		b, err := d.Read(ctx, lim)
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		if b.Last-b.First+1 != uint64(len(b.Events)) {
			t.Fatalf("batch [%d, %d] holds %d events", b.First, b.Last, len(b.Events))
		}
		for _, ev := range b.Events {
			got = append(got, ev.Message)
		}
		if err := d.Ack(b); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func checkSequence(t *testing.T, got []string, from int) {
	t.Helper()
	for i, m := range got {
		if want := fmt.Sprintf("m%05d", from+i); m != want {
			t.Fatalf("event %d = %s; want %s", i, m, want)
		}
	}
}

var testLim = BatchConfig{MaxEvents: 256, MaxBytes: 1 << 20, MaxWait: time.Millisecond}

// A reader that keeps up is served from memory, the very same events.
func TestDiskQueueServesCaughtUpReaderFromMemory(t *testing.T) {
	d := openTestDiskQueue(t, t.TempDir())
	defer d.Close()
	in := numbered(0, 100)
	if _, err := d.Append(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	b, err := d.Read(context.Background(), testLim)
	if err != nil || len(b.Events) != 100 || b.Events[0] != in[0] || b.Events[99] != in[99] {
		t.Fatalf("Read = %d events, %v; want the 100 appended events themselves", len(b.Events), err)
	}
	if d.memReads.Load() != 1 || d.diskReads.Load() != 0 {
		t.Fatalf("mem reads %d, disk reads %d; want 1, 0", d.memReads.Load(), d.diskReads.Load())
	}
	d.Ack(b)
	if e := d.ring[b.First%ringSize]; e.ev != nil {
		t.Error("acked event still held by the ring")
	}
}

// More than the ring holds before the reader comes: the overwritten part is
// read from disk, the rest from memory; every event once, in order.
func TestDiskQueueRingOverrun(t *testing.T) {
	d := openTestDiskQueue(t, t.TempDir())
	defer d.Close()
	n := ringSize + 3000
	for i := 0; i < n; i += 1000 {
		if _, err := d.Append(context.Background(), numbered(i, min(1000, n-i))); err != nil {
			t.Fatal(err)
		}
	}
	checkSequence(t, readAll(t, d, n, testLim), 0)
	if d.diskReads.Load() == 0 || d.memReads.Load() == 0 {
		t.Fatalf("mem reads %d, disk reads %d; want both paths used", d.memReads.Load(), d.diskReads.Load())
	}
}

// After a restart everything unacknowledged comes back from disk.
func TestDiskQueueRestartRedelivers(t *testing.T) {
	dir := t.TempDir()
	d := openTestDiskQueue(t, dir)
	d.Append(context.Background(), numbered(0, 50))
	got := readAll(t, d, 1, BatchConfig{MaxEvents: 20, MaxBytes: 1 << 20})
	if len(got) != 20 {
		t.Fatalf("first batch %d events", len(got))
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openTestDiskQueue(t, dir)
	defer d.Close()
	checkSequence(t, readAll(t, d, 30, testLim), 20)
	if d.diskReads.Load() == 0 {
		t.Fatal("the backlog after a restart must come from disk")
	}
}

// Concurrent appenders and a reader: every event exactly once.
func TestDiskQueueConcurrent(t *testing.T) {
	d := openTestDiskQueue(t, t.TempDir())
	defer d.Close()
	done := make(chan error, 4)
	for w := range 4 {
		go func() {
			for i := 0; i < 2000; i += 100 {
				if _, err := d.Append(context.Background(), numbered(w*100000+i, 100)); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	got := readAll(t, d, 8000, testLim)
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, m := range got {
		if seen[m] {
			t.Fatalf("%s delivered twice", m)
		}
		seen[m] = true
	}
	if len(seen) != 8000 {
		t.Fatalf("%d distinct events; want 8000", len(seen))
	}
}

// CloseAppend: what was appended is still delivered, then ErrQueueClosed.
func TestDiskQueueCloseDrains(t *testing.T) {
	d := openTestDiskQueue(t, t.TempDir())
	defer d.Close()
	d.Append(context.Background(), numbered(0, 10))
	d.CloseAppend()
	if _, err := d.Append(context.Background(), numbered(10, 1)); !errors.Is(err, ErrQueueClosed) {
		t.Fatalf("Append after CloseAppend = %v", err)
	}
	checkSequence(t, readAll(t, d, 10, testLim), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := d.Read(ctx, testLim); !errors.Is(err, ErrQueueClosed) {
		t.Fatalf("Read of a closed, drained queue = %v; want ErrQueueClosed", err)
	}
}
