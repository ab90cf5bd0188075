package spool_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/spool"
)

// These tests use only the exported API (and the documented file format),
// so they can run against a queue another process would hold open.

const inspRecLen = 24 + 40 // record header + inspPayload

func inspPayload(i int) []byte { return []byte(fmt.Sprintf("record-%033d", i)) }

func inspOpen(t *testing.T, opts spool.Options) *spool.Queue {
	t.Helper()
	q, err := spool.Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// inspAppend appends records from..to (inclusive, payload i for seq i) in
// one call and returns the time window the call ran in.
func inspAppend(t *testing.T, q *spool.Queue, from, to int) (before, after time.Time) {
	t.Helper()
	var recs [][]byte
	for i := from; i <= to; i++ {
		recs = append(recs, inspPayload(i))
	}
	before = time.Now()
	first, dropped, err := q.Append(context.Background(), recs)
	after = time.Now()
	if err != nil || dropped != 0 || first != uint64(from) {
		t.Fatalf("Append %d..%d: first %d dropped %d err %v", from, to, first, dropped, err)
	}
	return before, after
}

func inspect(t *testing.T, dir string) spool.Inspection {
	t.Helper()
	in, err := spool.Inspect(dir)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	return in
}

// inspectUntil inspects dir until ok accepts the result (the ack file is
// written in the background) or 10s pass.
func inspectUntil(t *testing.T, dir string, ok func(spool.Inspection) bool) spool.Inspection {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		in := inspect(t, dir)
		if ok(in) {
			return in
		}
		if time.Now().After(deadline) {
			t.Fatalf("Inspect never reached the expected state; last: %+v", in)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dirState describes every file of dir (name, size, mtime, mode), to check
// that Inspect changed nothing.
func dirState(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %d %v\n", e.Name(), info.Size(), info.ModTime().UnixNano(), info.Mode())
	}
	return b.String()
}

func segPaths(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func checkDamageFree(t *testing.T, in spool.Inspection) {
	t.Helper()
	if in.TornBytes != 0 || in.CorruptBytes != 0 || in.CorruptSegments != 0 || in.LostRecords != 0 || in.QuarantinedFiles != 0 {
		t.Errorf("damage reported on a healthy queue: %+v", in)
	}
}

func TestInspectOpenQueueThenClosed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	q := inspOpen(t, spool.Options{Dir: dir, SegmentBytes: 16 << 10})
	// 20 batches of 100 records (6.4 KB each), appended at distinct times,
	// in about 8 segments.
	var batchTime [21][2]time.Time
	for b := 1; b <= 20; b++ {
		before, after := inspAppend(t, q, (b-1)*100+1, b*100)
		batchTime[b] = [2]time.Time{before, after}
		time.Sleep(2 * time.Millisecond)
	}
	if err := q.Ack(1, 250); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(400, 450); err != nil {
		t.Fatal(err)
	}
	const pending = 2000 - 250 - 51

	// While the queue is open (its LOCK held): the ack state reaches the file
	// and the acknowledged segments are deleted in the background.
	st := q.Stats()
	if st.Records != pending {
		t.Fatalf("Stats.Records = %d, want %d", st.Records, pending)
	}
	in := inspectUntil(t, dir, func(in spool.Inspection) bool {
		return in.Floor == 251 && in.AckRanges == 1 && in.Segments == q.Stats().Segments
	})
	st = q.Stats()
	if in.Records != pending || in.Bytes != st.Bytes || in.Segments != st.Segments {
		t.Errorf("Inspect while open: records %d bytes %d segments %d; Stats: records %d bytes %d segments %d",
			in.Records, in.Bytes, in.Segments, st.Records, st.Bytes, st.Segments)
	}
	if in.Next != 2001 || in.AckRanges != 1 || in.AckErr != nil {
		t.Errorf("Inspect: next %d ranges %d ackErr %v; want 2001, 1, nil", in.Next, in.AckRanges, in.AckErr)
	}
	if in.DiskBytes < in.Bytes || in.Segments < 2 {
		t.Errorf("Inspect: disk bytes %d < bytes %d, or %d segments", in.DiskBytes, in.Bytes, in.Segments)
	}
	// Seq 251 is in batch 3, and not the first record of a segment: its own
	// timestamp, not an indexed neighbour's.
	if w := batchTime[3]; in.Oldest.Before(w[0]) || in.Oldest.After(w[1]) {
		t.Errorf("Oldest = %v; want within batch 3's append [%v, %v]", in.Oldest, w[0], w[1])
	}
	checkDamageFree(t, in)

	// Inspecting changes nothing, and does not stop the queue.
	before := dirState(t, dir)
	inspect(t, dir)
	if after := dirState(t, dir); after != before {
		t.Errorf("Inspect changed the directory:\n--- before\n%s--- after\n%s", before, after)
	}
	inspAppend(t, q, 2001, 2010)
	if err := q.Ack(251, 399); err != nil {
		t.Fatal(err)
	}
	const pending2 = pending + 10 - 149
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	// After Close, the files hold exactly the final state.
	in = inspect(t, dir)
	if in.Records != pending2 || in.Floor != 451 || in.Next != 2011 || in.AckRanges != 0 {
		t.Errorf("Inspect after Close: records %d floor %d next %d ranges %d; want %d 451 2011 0",
			in.Records, in.Floor, in.Next, in.AckRanges, pending2)
	}
	if w := batchTime[5]; in.Oldest.Before(w[0]) || in.Oldest.After(w[1]) {
		t.Errorf("Oldest = %v; want within batch 5's append [%v, %v]", in.Oldest, w[0], w[1])
	}
	checkDamageFree(t, in)

	// Open agrees with Inspect.
	q2 := inspOpen(t, spool.Options{Dir: dir, SegmentBytes: 16 << 10})
	if st := q2.Stats(); st.Records != in.Records || st.Bytes != in.Bytes {
		t.Errorf("reopened: Stats records %d bytes %d; Inspect said %d, %d", st.Records, st.Bytes, in.Records, in.Bytes)
	}
}

func TestInspectEmpty(t *testing.T) {
	dir := t.TempDir()
	in := inspect(t, dir)
	if in.Records != 0 || in.Segments != 0 || in.Bytes != 0 || !in.Oldest.IsZero() || in.Floor != 1 || in.Next != 1 {
		t.Errorf("empty directory: %+v", in)
	}
	if !errors.Is(in.AckErr, fs.ErrNotExist) {
		t.Errorf("empty directory: AckErr = %v; want not exist", in.AckErr)
	}

	q := inspOpen(t, spool.Options{Dir: dir})
	in = inspect(t, dir)
	if in.Records != 0 || in.Segments != 1 || in.Bytes != 0 || !in.Oldest.IsZero() || in.AckErr != nil || in.Next != 1 {
		t.Errorf("new queue: %+v", in)
	}
	checkDamageFree(t, in)

	// Everything acknowledged: nothing pending, no oldest.
	inspAppend(t, q, 1, 5)
	if err := q.Ack(1, 5); err != nil {
		t.Fatal(err)
	}
	q.Close()
	in = inspect(t, dir)
	if in.Records != 0 || in.Bytes != 0 || !in.Oldest.IsZero() || in.Floor != 6 || in.Next != 6 {
		t.Errorf("all acknowledged: %+v", in)
	}
}

func TestInspectMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	_, err := spool.Inspect(dir)
	if !errors.Is(err, spool.ErrNoSpool) || err.Error() != "no spool at "+dir {
		t.Errorf("Inspect(missing) = %v; want \"no spool at %s\"", err, dir)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Inspect created %s", dir)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := spool.Inspect(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Inspect(file) = %v; want not a directory", err)
	}
}

// closedQueue returns the directory of a closed queue holding records 1..n
// in one segment, none acknowledged.
func closedQueue(t *testing.T, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "q")
	q := inspOpen(t, spool.Options{Dir: dir})
	inspAppend(t, q, 1, n)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func appendToFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestInspectTornTail(t *testing.T) {
	dir := closedQueue(t, 10)
	segs := segPaths(t, dir)
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	// Half a record: a header announcing 40 bytes, 10 of them present (what
	// a reader may see while an Append is writing, or after a crash).
	torn := make([]byte, 24+10)
	binary.LittleEndian.PutUint32(torn, 40)
	binary.LittleEndian.PutUint64(torn[8:], 11)
	appendToFile(t, segs[0], torn)

	before := dirState(t, dir)
	in := inspect(t, dir)
	if after := dirState(t, dir); after != before {
		t.Errorf("Inspect changed the directory:\n--- before\n%s--- after\n%s", before, after)
	}
	if in.Records != 10 || in.Next != 11 || in.TornBytes != int64(len(torn)) || in.CorruptBytes != 0 || in.LostRecords != 0 {
		t.Errorf("torn tail: records %d next %d torn %d corrupt %d lost %d; want 10 11 %d 0 0",
			in.Records, in.Next, in.TornBytes, in.CorruptBytes, in.LostRecords, len(torn))
	}
	// Open truncates exactly what Inspect reported.
	q := inspOpen(t, spool.Options{Dir: dir})
	if st := q.Stats(); st.TruncatedBytes != uint64(in.TornBytes) || st.Records != in.Records {
		t.Errorf("Open: truncated %d records %d; Inspect said %d, %d", st.TruncatedBytes, st.Records, in.TornBytes, in.Records)
	}

	// A segment being created (no complete header yet) is a torn tail too.
	dir = closedQueue(t, 3)
	os.WriteFile(filepath.Join(dir, "00000000000000000004.seg"), []byte("SLS"), 0o644)
	in = inspect(t, dir)
	if in.Records != 3 || in.TornBytes != 3 || in.CorruptBytes != 0 || in.Segments != 2 {
		t.Errorf("torn header: %+v", in)
	}
}

func TestInspectCorruption(t *testing.T) {
	dir := closedQueue(t, 10)
	seg := segPaths(t, dir)[0]
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if want := 8 + 10*inspRecLen; len(b) != want {
		t.Fatalf("segment is %d bytes; want %d", len(b), want)
	}
	b[8+5*inspRecLen+30] ^= 0xff // record 6's payload: its CRC fails
	os.WriteFile(seg, b, 0o644)
	os.WriteFile(filepath.Join(dir, "00000000000000000001.seg.8.1.corrupt"), []byte("old damage"), 0o644)

	in := inspect(t, dir)
	if in.Records != 9 || in.CorruptBytes != inspRecLen || in.CorruptSegments != 1 || in.LostRecords != 1 || in.TornBytes != 0 {
		t.Errorf("damaged record: records %d corrupt %d in %d segments, lost %d, torn %d; want 9, %d in 1, 1, 0",
			in.Records, in.CorruptBytes, in.CorruptSegments, in.LostRecords, in.TornBytes, inspRecLen)
	}
	if in.QuarantinedFiles != 1 || in.QuarantinedBytes != int64(len("old damage")) {
		t.Errorf("quarantined: %d files, %d bytes", in.QuarantinedFiles, in.QuarantinedBytes)
	}
	q := inspOpen(t, spool.Options{Dir: dir})
	if st := q.Stats(); st.LostRecords != in.LostRecords || st.QuarantinedBytes != uint64(in.CorruptBytes) || st.Records != in.Records {
		t.Errorf("Open: lost %d quarantined %d records %d; Inspect said %d, %d, %d",
			st.LostRecords, st.QuarantinedBytes, st.Records, in.LostRecords, in.CorruptBytes, in.Records)
	}

	// A bad segment header: the whole file is damage.
	dir = closedQueue(t, 4)
	seg = segPaths(t, dir)[0]
	b, _ = os.ReadFile(seg)
	copy(b, "XXXX")
	os.WriteFile(seg, b, 0o644)
	in = inspect(t, dir)
	if in.Records != 0 || in.CorruptBytes != int64(len(b)) || in.CorruptSegments != 1 || in.LostRecords != 0 {
		t.Errorf("bad header: %+v", in)
	}
}

func TestInspectDamagedAckFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	q := inspOpen(t, spool.Options{Dir: dir})
	inspAppend(t, q, 1, 10)
	q.Ack(1, 4)
	q.Close()
	if in := inspect(t, dir); in.Records != 6 || in.Floor != 5 {
		t.Fatalf("before damage: records %d floor %d", in.Records, in.Floor)
	}
	os.WriteFile(filepath.Join(dir, "ack"), []byte("garbage garbage garbage garbage"), 0o644)
	in := inspect(t, dir)
	if in.AckErr == nil || in.Records != 10 || in.Floor != 1 {
		t.Errorf("damaged ack file: ackErr %v records %d floor %d; want an error, 10, 1", in.AckErr, in.Records, in.Floor)
	}
	os.Remove(filepath.Join(dir, "ack"))
	if in := inspect(t, dir); !errors.Is(in.AckErr, fs.ErrNotExist) || in.Records != 10 {
		t.Errorf("missing ack file: ackErr %v records %d", in.AckErr, in.Records)
	}
}

// Inspect runs against a queue that is appending, acknowledging, rolling
// and deleting segments: it never fails and never reports damage or loss.
func TestInspectConcurrentWithQueue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	q := inspOpen(t, spool.Options{Dir: dir, SegmentBytes: 1 << 10})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		seq := 1
		for ctx.Err() == nil {
			n := 1 + seq%7
			if _, _, err := q.Append(ctx, func() (r [][]byte) {
				for i := 0; i < n; i++ {
					r = append(r, inspPayload(seq+i))
				}
				return r
			}()); err != nil {
				return
			}
			// Acknowledge all but the newest 30 records, out of order.
			if hi := seq + n - 1 - 30; hi > 2 {
				q.Ack(uint64(hi-1), uint64(hi))
				q.Ack(1, uint64(hi-2))
			}
			seq += n
		}
	}()
	deadline := time.Now().Add(500 * time.Millisecond)
	runs := 0
	for ; time.Now().Before(deadline) || runs < 20; runs++ {
		in, err := spool.Inspect(dir)
		if err != nil {
			t.Fatalf("Inspect during appends: %v", err)
		}
		if in.CorruptBytes != 0 || in.LostRecords != 0 || in.AckErr != nil {
			t.Fatalf("Inspect during appends reported damage: %+v", in)
		}
		if in.Records > in.Next-in.Floor {
			t.Fatalf("Inspect: %d records pending in [%d, %d)", in.Records, in.Floor, in.Next)
		}
	}
	cancel()
	wg.Wait()
	q.Close()
	in := inspect(t, dir)
	checkDamageFree(t, in)
	if in.Records > 31 {
		t.Errorf("after Close: %d records pending; want at most 31", in.Records)
	}
}

// Inspect predicts what Open will find: on randomly damaged copies of a
// closed queue, its pending records, torn bytes, damaged bytes and lost
// records equal Stats after Open (which repairs the copy).
func TestInspectPredictsRecovery(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	q := inspOpen(t, spool.Options{Dir: base, SegmentBytes: 1 << 10})
	for b := 0; b < 10; b++ {
		inspAppend(t, q, b*10+1, b*10+10)
	}
	q.Ack(1, 10)
	q.Ack(30, 35)
	q.Ack(61, 61)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 300; iter++ {
		dir := filepath.Join(t.TempDir(), "q")
		os.MkdirAll(dir, 0o755)
		entries, _ := os.ReadDir(base)
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(base, e.Name()))
			os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
		}
		segs := segPaths(t, dir)
		var did []string
		for n := 1 + rng.IntN(3); n > 0; n-- {
			seg := segs[rng.IntN(len(segs))]
			b, err := os.ReadFile(seg)
			if err != nil {
				continue // deleted by an earlier step
			}
			switch op := rng.IntN(5); op {
			case 0: // flip a byte
				i := rng.IntN(len(b))
				b[i] ^= byte(1 + rng.IntN(255))
				did = append(did, fmt.Sprintf("flip %s@%d", filepath.Base(seg), i))
			case 1: // truncate
				i := rng.IntN(len(b) + 1)
				b = b[:i]
				did = append(did, fmt.Sprintf("truncate %s@%d", filepath.Base(seg), i))
			case 2: // zero a range
				i := rng.IntN(len(b))
				j := min(len(b), i+1+rng.IntN(100))
				clear(b[i:j])
				did = append(did, fmt.Sprintf("zero %s[%d:%d]", filepath.Base(seg), i, j))
			case 3: // delete
				os.Remove(seg)
				did = append(did, "delete "+filepath.Base(seg))
				continue
			case 4: // a partial record at the end
				b = append(b, make([]byte, 1+rng.IntN(40))...)
				did = append(did, "extend "+filepath.Base(seg))
			}
			os.WriteFile(seg, b, 0o644)
		}
		in := inspect(t, dir)
		q, err := spool.Open(spool.Options{Dir: dir, SegmentBytes: 1 << 10})
		if err != nil {
			t.Fatalf("%v: Open: %v", did, err)
		}
		st := q.Stats()
		q.Close()
		if st.Records != in.Records || st.LostRecords != in.LostRecords ||
			st.TruncatedBytes != uint64(in.TornBytes) || st.QuarantinedBytes != uint64(in.CorruptBytes) {
			t.Errorf("%v:\nInspect: records %d lost %d torn %d corrupt %d\nOpen:    records %d lost %d truncated %d quarantined %d",
				did, in.Records, in.LostRecords, in.TornBytes, in.CorruptBytes,
				st.Records, st.LostRecords, st.TruncatedBytes, st.QuarantinedBytes)
		}
	}
}
