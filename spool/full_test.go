package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rec100 encodes to exactly 100 bytes (24-byte header + 76).
var rec100 = bytes.Repeat([]byte("a"), 76)

// With SegmentBytes 256 a segment holds two 100-byte records, and
// MaxBytes 512 admits five: segments [1,2] [3,4] [5].
var fullOpts = Options{SegmentBytes: 256, MaxBytes: 512}

// fillToCapacity appends rec100 records one at a time until the queue
// refuses (blocks or drops) and returns how many fitted.
func fillToCapacity(t *testing.T, q *Queue, drop bool) int {
	t.Helper()
	for n := 0; n < 100; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		_, dropped, err := q.Append(ctx, [][]byte{rec100})
		cancel()
		switch {
		case drop && err == nil && dropped == 1, !drop && errors.Is(err, context.DeadlineExceeded):
			return n
		case err != nil || dropped != 0:
			t.Fatalf("Append %d: dropped %d, %v", n, dropped, err)
		}
	}
	t.Fatal("the queue never filled")
	return 0
}

// TestFullBothPolicies: space comes back only when a whole segment is
// acknowledged. A partial ack frees nothing: Append still blocks until ctx
// ends (when_full = block) or drops and counts (drop_newest), with nothing
// written. Acknowledging the rest of the segment makes room for exactly
// its records again.
func TestFullBothPolicies(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("drop=%v", drop), func(t *testing.T) {
			opts := fullOpts
			opts.Dir, opts.DropWhenFull = t.TempDir(), drop
			q := openT(t, opts)
			if n := fillToCapacity(t, q, drop); n != 5 {
				t.Fatalf("%d records fitted, want 5", n)
			}
			try := func() (first uint64, dropped int, err error) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
				defer cancel()
				return q.Append(ctx, [][]byte{rec100, rec100})
			}
			droppedBefore := q.Stats().Dropped
			if err := q.Ack(1, 1); err != nil { // half of the first segment
				t.Fatal(err)
			}
			first, dropped, err := try()
			if drop {
				if err != nil || dropped != 2 || first != 0 {
					t.Fatalf("after a partial ack: first %d, dropped %d, %v; want 2 dropped", first, dropped, err)
				}
				if d := q.Stats().Dropped - droppedBefore; d != 2 {
					t.Fatalf("Stats.Dropped grew by %d, want 2", d)
				}
			} else if !errors.Is(err, context.DeadlineExceeded) || first != 0 {
				t.Fatalf("after a partial ack: first %d, %v; want DeadlineExceeded", first, err)
			}
			if _, next := q.Bounds(); next != 6 {
				t.Fatalf("next %d after a refused Append, want 6", next)
			}
			if err := q.Ack(2, 2); err != nil { // the first segment is free now
				t.Fatal(err)
			}
			if first, dropped, err := try(); err != nil || dropped != 0 || first != 6 {
				t.Fatalf("after acking a segment: first %d, dropped %d, %v", first, dropped, err)
			}
			// Full again.
			first, dropped, err = try()
			if drop {
				if err != nil || dropped != 2 {
					t.Fatalf("full again: dropped %d, %v", dropped, err)
				}
			} else if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("full again: first %d, %v", first, err)
			}
			if st := q.Stats(); st.Bytes > opts.MaxBytes || st.Records != 5 || st.Appended != 7 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestFullBlockPartialAppendThenCancel: a blocking Append of more records
// than fit writes the prefix that fits, then waits; when ctx ends it
// returns ctx.Err() with the first seq it did write, and those records
// stay readable.
func TestFullBlockPartialAppendThenCancel(t *testing.T) {
	opts := fullOpts
	opts.Dir = t.TempDir()
	q := openT(t, opts)
	recs := make([][]byte, 8)
	for i := range recs {
		recs[i] = append([]byte(fmt.Sprintf("%03d", i)), rec100[3:]...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	first, dropped, err := q.Append(ctx, recs)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || first != 1 || dropped != 0 {
		t.Fatalf("Append = %d, %d, %v; want 1, 0, DeadlineExceeded", first, dropped, err)
	}
	if _, next := q.Bounds(); next != 6 {
		t.Fatalf("next %d, want 6 (five records fit)", next)
	}
	got := readAll(t, q)
	if len(got) != 5 {
		t.Fatalf("read %d records", len(got))
	}
	for i, r := range got {
		if r.Seq != uint64(i+1) || !bytes.Equal(r.Data, recs[i]) {
			t.Fatalf("record %d: seq %d %q", i, r.Seq, r.Data[:3])
		}
	}
	if st := q.Stats(); st.Dropped != 0 || st.Appended != 5 {
		t.Fatalf("stats %+v", st)
	}
}

// TestFullBlockProducersAndConsumer: with when_full = block, producers
// write far more than MaxBytes while a consumer reads and acknowledges;
// every record arrives exactly once, in order per producer, nothing is
// dropped and the bounded size is never exceeded.
func TestFullBlockProducersAndConsumer(t *testing.T) {
	opts := Options{Dir: t.TempDir(), SegmentBytes: 512, MaxBytes: 2048}
	q := openT(t, opts)
	const producers, perProducer = 3, 200
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	errc := make(chan error, producers)
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perProducer; {
				var recs [][]byte
				for k := 0; k <= i%3 && i < perProducer; k++ {
					recs = append(recs, []byte(fmt.Sprintf("p%d-%04d-%s", p, i, strings.Repeat("y", 30))))
					i++
				}
				if _, dropped, err := q.Append(ctx, recs); err != nil || dropped != 0 {
					errc <- fmt.Errorf("producer %d: dropped %d, %v", p, dropped, err)
					cancel() // stop the consumer too
					return
				}
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }() // producers end: they finish or ctx ends

	next := make([]int, producers)
	var from uint64 = 1
	for got := 0; got < producers*perProducer; {
		select {
		case err := <-errc:
			t.Fatal(err)
		default:
		}
		recs, err := q.Read(ctx, from, 7, 0, 0)
		if err != nil {
			select {
			case perr := <-errc:
				t.Fatal(perr)
			default:
			}
			t.Fatalf("Read after %d records: %v", got, err)
		}
		if st := q.Stats(); st.Bytes > opts.MaxBytes {
			t.Fatalf("Bytes %d > MaxBytes %d", st.Bytes, opts.MaxBytes)
		}
		for _, r := range recs {
			if r.Seq != from {
				t.Fatalf("seq %d, want %d", r.Seq, from)
			}
			from++
			f := strings.SplitN(string(r.Data), "-", 3)
			p, _ := strconv.Atoi(strings.TrimPrefix(f[0], "p"))
			i, _ := strconv.Atoi(f[1])
			if p < 0 || p >= producers || i != next[p] {
				t.Fatalf("seq %d: %q, want p%d-%04d", r.Seq, r.Data, p, next[p])
			}
			next[p]++
			got++
		}
		if err := q.Ack(recs[0].Seq, recs[len(recs)-1].Seq); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	st := q.Stats()
	if st.Dropped != 0 || st.Appended != producers*perProducer || st.Records != 0 {
		t.Fatalf("stats %+v", st)
	}
	if total := int64(producers * perProducer * (recHeaderSize + 40)); total < 10*opts.MaxBytes {
		t.Fatalf("only %d bytes went through a %d-byte queue", total, opts.MaxBytes)
	}
}

// TestFullDropConcurrent: with drop_newest, concurrent appenders on a full
// queue get exact drop counts: appended + dropped is everything offered,
// Stats.Dropped is the sum of what Append reported, what was appended is
// readable, and the bound holds.
func TestFullDropConcurrent(t *testing.T) {
	opts := Options{Dir: t.TempDir(), SegmentBytes: 512, MaxBytes: 1024, DropWhenFull: true}
	q := openT(t, opts)
	const goroutines, calls = 4, 50
	var mu sync.Mutex
	var appended, dropped int
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := 0; c < calls; c++ {
				seqs := make([]uint64, 2)
				d, err := q.AppendSeqs(context.Background(), [][]byte{rec100, rec100}, seqs)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				dropped += d
				for _, s := range seqs {
					if s != 0 {
						appended++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st := q.Stats()
	if appended+dropped != goroutines*calls*2 || appended == 0 || dropped == 0 {
		t.Fatalf("appended %d + dropped %d != %d offered", appended, dropped, goroutines*calls*2)
	}
	if st.Dropped != uint64(dropped) || st.Appended != uint64(appended) || st.Bytes > opts.MaxBytes {
		t.Fatalf("stats %+v; appended %d, dropped %d", st, appended, dropped)
	}
	recs := readAll(t, q)
	if !slices.Equal(seqs(recs), seqRange(1, uint64(appended))) {
		t.Fatalf("read %v", seqs(recs))
	}
	if err := q.Ack(1, uint64(appended)); err != nil {
		t.Fatal(err)
	}
	if _, d, err := q.Append(context.Background(), [][]byte{rec100, rec100}); err != nil || d != 0 {
		t.Fatalf("after acking everything: dropped %d, %v", d, err)
	}
}
