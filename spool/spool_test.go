package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func payload(i uint64) []byte {
	return []byte(fmt.Sprintf("rec-%06d-%s", i, strings.Repeat("x", int(i%37))))
}

func openT(t testing.TB, opts Options) *Queue {
	t.Helper()
	q, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// appendSeq appends payload(first..first+n-1) one call per batch records.
func appendSeq(t testing.TB, q *Queue, from, n uint64, batch int) {
	t.Helper()
	var recs [][]byte
	for i := from; i < from+n; i++ {
		recs = append(recs, payload(i))
		if len(recs) == batch || i == from+n-1 {
			first, dropped, err := q.Append(context.Background(), recs)
			if err != nil || dropped != 0 {
				t.Fatalf("Append: first %d dropped %d err %v", first, dropped, err)
			}
			if want := i + 1 - uint64(len(recs)); first != want {
				t.Fatalf("Append first = %d, want %d", first, want)
			}
			recs = recs[:0]
		}
	}
}

// readAll reads every unacknowledged record from the floor on.
func readAll(t testing.TB, q *Queue) []Record {
	t.Helper()
	var out []Record
	from, _ := q.Bounds()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Records is re-evaluated: damage found while reading lowers it.
	for uint64(len(out)) < q.Stats().Records {
		recs, err := q.Read(ctx, from, 100, 0, 0)
		if err != nil {
			t.Fatalf("Read(from %d) after %d of %d records: %v", from, len(out), q.Stats().Records, err)
		}
		out = append(out, recs...)
		from = recs[len(recs)-1].Seq + 1
	}
	return out
}

func seqs(recs []Record) []uint64 {
	var s []uint64
	for _, r := range recs {
		s = append(s, r.Seq)
	}
	return s
}

func seqRange(lo, hi uint64) []uint64 {
	var s []uint64
	for i := lo; i <= hi; i++ {
		s = append(s, i)
	}
	return s
}

func checkPayloads(t testing.TB, recs []Record) {
	t.Helper()
	for i, r := range recs {
		if !bytes.Equal(r.Data, payload(r.Seq)) {
			t.Fatalf("record %d: seq %d data %q, want %q", i, r.Seq, r.Data, payload(r.Seq))
		}
		if i > 0 && r.Seq <= recs[i-1].Seq {
			t.Fatalf("seq %d after %d", r.Seq, recs[i-1].Seq)
		}
	}
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	sort.Strings(m)
	return m
}

func TestParseFsync(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    FsyncPolicy
		wantErr bool
	}{
		{"always", FsyncPolicy{Always: true}, false},
		{"never", FsyncPolicy{}, false},
		{"1s", FsyncPolicy{Every: time.Second}, false},
		{" 250ms ", FsyncPolicy{Every: 250 * time.Millisecond}, false},
		{"0s", FsyncPolicy{}, true},
		{"-1s", FsyncPolicy{}, true},
		{"sometimes", FsyncPolicy{}, true},
	} {
		got, err := ParseFsync(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseFsync(%q) = %v, %v; want %v, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestOpenValidation(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []Options{
		{},
		{Dir: dir, SegmentBytes: 10},
		{Dir: dir, SegmentBytes: 1000, MaxBytes: 1999},
		{Dir: dir, MaxBytes: -1},
		{Dir: dir, MaxRecord: -1},
	} {
		if q, err := Open(o); err == nil {
			q.Close()
			t.Errorf("Open(%+v) succeeded", o)
		}
	}
}

func TestRoundTripConcurrent(t *testing.T) {
	for _, fs := range []FsyncPolicy{{}, {Every: 5 * time.Millisecond}, {Always: true}} {
		t.Run(fs.String(), func(t *testing.T) {
			dir := t.TempDir()
			q := openT(t, Options{Dir: dir, SegmentBytes: 4096, Fsync: fs})
			const goroutines, calls = 8, 40
			var wg sync.WaitGroup
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for c := 0; c < calls; c++ {
						var recs [][]byte
						for k := 0; k <= c%7; k++ {
							recs = append(recs, []byte(fmt.Sprintf("g%d-c%d-k%d", g, c, k)))
						}
						if _, _, err := q.Append(context.Background(), recs); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			check := func(q *Queue) {
				recs := readAll(t, q)
				seen := map[string]bool{}
				for i, r := range recs {
					if r.Seq != uint64(i+1) {
						t.Fatalf("record %d has seq %d", i, r.Seq)
					}
					if seen[string(r.Data)] {
						t.Fatalf("duplicate %q", r.Data)
					}
					seen[string(r.Data)] = true
				}
				// per goroutine, per call, records are consecutive and in order
				want := 0
				for c := 0; c < calls; c++ {
					want += goroutines * (c%7 + 1)
				}
				if len(recs) != want {
					t.Fatalf("got %d records, want %d", len(recs), want)
				}
			}
			check(q)
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			check(openT(t, Options{Dir: dir, SegmentBytes: 4096}))
		})
	}
}

func TestSegmentRoll(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, Options{Dir: dir, SegmentBytes: 256})
	appendSeq(t, q, 1, 60, 7)
	// a record larger than a segment gets one of its own
	big := bytes.Repeat([]byte("B"), 400)
	if first, _, err := q.Append(context.Background(), [][]byte{big}); err != nil || first != 61 {
		t.Fatalf("big append: %d %v", first, err)
	}
	files := segFiles(t, dir)
	if len(files) < 10 {
		t.Fatalf("only %d segments: %v", len(files), files)
	}
	var prev uint64
	for _, f := range files {
		first, ok := parseSegName(f)
		if !ok || first <= prev {
			t.Fatalf("bad segment list %v", files)
		}
		prev = first
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 256 && first != 61 {
			t.Errorf("segment %s is %d bytes > 256", f, fi.Size())
		}
	}
	recs := readAll(t, q)
	if len(recs) != 61 {
		t.Fatalf("read %d records", len(recs))
	}
	checkPayloads(t, recs[:60])
	if !bytes.Equal(recs[60].Data, big) {
		t.Fatal("big record mismatch")
	}
}

func TestCursorsAndAcks(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, Options{Dir: dir, SegmentBytes: 512})
	appendSeq(t, q, 1, 100, 10)
	ctx := context.Background()

	// Backlog cursor from the floor, live cursor from 90.
	back, err := q.Read(ctx, 0, 10, 0, 0)
	if err != nil || !slices.Equal(seqs(back), seqRange(1, 10)) {
		t.Fatalf("backlog read: %v %v", seqs(back), err)
	}
	live, err := q.Read(ctx, 90, 100, 0, 0)
	if err != nil || !slices.Equal(seqs(live), seqRange(90, 100)) {
		t.Fatalf("live read: %v %v", seqs(live), err)
	}
	checkPayloads(t, back)
	checkPayloads(t, live)

	// Out-of-order acks: live first, then pieces of the backlog.
	for _, a := range [][2]uint64{{90, 100}, {5, 10}, {1, 3}} {
		if err := q.Ack(a[0], a[1]); err != nil {
			t.Fatal(err)
		}
	}
	if f, n := q.Bounds(); f != 4 || n != 101 {
		t.Fatalf("Bounds = %d, %d; want 4, 101", f, n)
	}
	if err := q.Ack(4, 4); err != nil {
		t.Fatal(err)
	}
	if f, _ := q.Bounds(); f != 11 {
		t.Fatalf("floor = %d, want 11", f)
	}
	st := q.Stats()
	if st.Records != 79 || st.Acked != 21 || st.Appended != 100 {
		t.Fatalf("stats %+v", st)
	}
	// Re-reading from below the floor starts at the floor and skips the
	// acknowledged live range.
	rest := readAll(t, q)
	if !slices.Equal(seqs(rest), seqRange(11, 89)) {
		t.Fatalf("rest = %v", seqs(rest))
	}
	for _, bad := range [][2]uint64{{5, 4}, {100, 101}} {
		if err := q.Ack(bad[0], bad[1]); !errors.Is(err, ErrInvalidAck) {
			t.Errorf("Ack(%v) = %v", bad, err)
		}
	}
	if err := q.Ack(1, 2); err != nil { // below the floor: no-op
		t.Fatal(err)
	}
}

func TestAckRanges(t *testing.T) {
	q := &Queue{floor: 1, spaceCh: make(chan struct{})}
	steps := []struct {
		lo, hi    uint64
		added     uint64
		floor     uint64
		wantRange []span
	}{
		{10, 12, 3, 1, []span{{10, 12}}},
		{20, 20, 1, 1, []span{{10, 12}, {20, 20}}},
		{13, 14, 2, 1, []span{{10, 14}, {20, 20}}},
		{15, 19, 5, 1, []span{{10, 20}}},
		{5, 25, 10, 1, []span{{5, 25}}},
		{2, 3, 2, 1, []span{{2, 3}, {5, 25}}},
		{1, 1, 1, 4, []span{{5, 25}}},
		{4, 4, 1, 26, nil},
		{1, 30, 5, 31, nil},
	}
	for i, s := range steps {
		got := q.ackLocked(s.lo, s.hi)
		if got != s.added || q.floor != s.floor || !slices.Equal(q.ranges, s.wantRange) {
			t.Fatalf("step %d ack [%d,%d]: added %d floor %d ranges %v; want %d %d %v",
				i, s.lo, s.hi, got, q.floor, q.ranges, s.added, s.floor, s.wantRange)
		}
	}
}

// segBounds lists [first, end) of each segment file from their names.
func segFirsts(t *testing.T, dir string) []uint64 {
	var out []uint64
	for _, f := range segFiles(t, dir) {
		s, _ := parseSegName(f)
		out = append(out, s)
	}
	return out
}

func TestReclaimDeletesExactlyCoveredSegments(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, Options{Dir: dir, SegmentBytes: 300})
	appendSeq(t, q, 1, 120, 5)
	firsts := segFirsts(t, dir)
	if len(firsts) < 6 {
		t.Fatalf("want several segments, got %v", firsts)
	}
	// expected remaining files given acknowledged ranges
	expect := func(acked func(uint64) bool) []string {
		var out []string
		for i, f := range firsts {
			if i == len(firsts)-1 {
				out = append(out, segName(f))
				continue
			}
			all := true
			for s := f; s < firsts[i+1]; s++ {
				all = all && acked(s)
			}
			if !all {
				out = append(out, segName(f))
			}
		}
		return out
	}
	// Ack a whole middle segment out of order, plus part of the first.
	mid := firsts[3]
	midEnd := firsts[4] - 1
	if err := q.Ack(mid, midEnd); err != nil {
		t.Fatal(err)
	}
	cut := firsts[1] + 1 // first segment fully, second partially
	if err := q.Ack(1, cut); err != nil {
		t.Fatal(err)
	}
	if err := q.flushAck(); err != nil {
		t.Fatal(err)
	}
	acked := func(s uint64) bool { return s <= cut || (s >= mid && s <= midEnd) }
	if got, want := segFiles(t, dir), expect(acked); !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	// Reading still works across the hole.
	recs := readAll(t, q)
	var want []uint64
	for s := uint64(1); s <= 120; s++ {
		if !acked(s) {
			want = append(want, s)
		}
	}
	if !slices.Equal(seqs(recs), want) {
		t.Fatalf("read %v, want %v", seqs(recs), want)
	}
	checkPayloads(t, recs)
	// Ack everything: only the active (last) segment remains.
	if err := q.Ack(1, 120); err != nil {
		t.Fatal(err)
	}
	if err := q.flushAck(); err != nil {
		t.Fatal(err)
	}
	if got := segFiles(t, dir); len(got) != 1 || got[0] != segName(firsts[len(firsts)-1]) {
		t.Fatalf("files %v", got)
	}
	if st := q.Stats(); st.Records != 0 || st.Bytes != 0 {
		t.Fatalf("stats after full ack %+v", st)
	}
}

func TestRestartResumesAtFloor(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, SegmentBytes: 1024}
	q := openT(t, opts)
	appendSeq(t, q, 1, 100, 9)
	for _, a := range [][2]uint64{{1, 10}, {20, 30}, {50, 60}} {
		if err := q.Ack(a[0], a[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = openT(t, opts)
	if f, n := q.Bounds(); f != 11 || n != 101 {
		t.Fatalf("Bounds %d %d", f, n)
	}
	recs := readAll(t, q)
	want := append(append(seqRange(11, 19), seqRange(31, 49)...), seqRange(61, 100)...)
	if !slices.Equal(seqs(recs), want) {
		t.Fatalf("redelivered %v", seqs(recs))
	}
	checkPayloads(t, recs)
	appendSeq(t, q, 101, 5, 5)
	if st := q.Stats(); st.LostRecords != 0 || st.TruncatedBytes != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// lastRecordOffset returns the offset of the last record in a segment file.
func recordOffsets(t testing.TB, path string) []int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := int64(segHeaderSize); off < int64(len(b)); {
		offs = append(offs, off)
		off += recHeaderSize + int64(parseRecHeader(b[off:]).n)
	}
	return offs
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == lockName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTornTailEveryOffset(t *testing.T) {
	base := t.TempDir()
	q := openT(t, Options{Dir: base})
	const n = 20
	appendSeq(t, q, 1, n, 4)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	files := segFiles(t, base)
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	seg := filepath.Join(base, files[0])
	offs := recordOffsets(t, seg)
	start := offs[len(offs)-1]
	fi, _ := os.Stat(seg)
	for cut := start; cut < fi.Size(); cut++ {
		dir := t.TempDir()
		copyDir(t, base, dir)
		if err := os.Truncate(filepath.Join(dir, files[0]), cut); err != nil {
			t.Fatal(err)
		}
		q, err := Open(Options{Dir: dir})
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		recs := readAll(t, q)
		st := q.Stats()
		if !slices.Equal(seqs(recs), seqRange(1, n-1)) || st.TruncatedBytes != uint64(cut-start) || st.LostRecords != 0 {
			t.Fatalf("cut %d: seqs %v, stats %+v", cut, seqs(recs), st)
		}
		checkPayloads(t, recs)
		if first, _, err := q.Append(context.Background(), [][]byte{payload(n)}); err != nil || first != n {
			t.Fatalf("cut %d: append after recovery: %d %v", cut, first, err)
		}
		if got := readAll(t, q); len(got) != n || got[n-1].Seq != n {
			t.Fatalf("cut %d: after append %v", cut, seqs(got))
		}
		q.Close()
		// A second reopen finds nothing new to repair.
		q2, err := Open(Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if st := q2.Stats(); st.TruncatedBytes != 0 || st.LostRecords != 0 || st.Records != n {
			t.Fatalf("cut %d: second reopen %+v", cut, st)
		}
		q2.Close()
	}
}

func TestCorruptionMidQueue(t *testing.T) {
	const n = 200
	type mut func(b []byte, offs []int64)
	cases := []struct {
		name    string
		segIdx  int // which segment file (-1: last)
		mutate  mut
		maxLost uint64
	}{
		{"bit flip payload", 2, func(b []byte, offs []int64) { b[offs[3]+recHeaderSize+2] ^= 0x10 }, 1},
		{"bit flip length", 2, func(b []byte, offs []int64) { b[offs[4]] ^= 0x01 }, 1},
		{"bit flip seq", 1, func(b []byte, offs []int64) { b[offs[2]+9] ^= 0x80 }, 1},
		{"bit flip crc", 3, func(b []byte, offs []int64) { b[offs[0]+5] ^= 0x04 }, 1},
		{"zero 512 block", 2, func(b []byte, offs []int64) { clear(b[512:1024]) }, 512/recHeaderSize + 2},
		{"zero from first record", 1, func(b []byte, offs []int64) { clear(b[segHeaderSize : segHeaderSize+512]) }, 512/recHeaderSize + 2},
		{"truncate middle segment", 2, nil, 1000},
		{"bad header", 1, func(b []byte, offs []int64) { b[0] = 'X' }, 1000},
		{"bit flip in last segment", -1, func(b []byte, offs []int64) { b[offs[1]+recHeaderSize] ^= 1 }, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Dir: dir, SegmentBytes: 2048}
			q := openT(t, opts)
			appendSeq(t, q, 1, n, 8)
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			files := segFiles(t, dir)
			idx := tc.segIdx
			if idx < 0 {
				idx = len(files) - 1
			}
			path := filepath.Join(dir, files[idx])
			first, _ := parseSegName(files[idx])
			segEnd := uint64(n + 1)
			if idx+1 < len(files) {
				segEnd, _ = parseSegName(files[idx+1])
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if tc.mutate != nil {
				tc.mutate(b, recordOffsets(t, path))
			} else {
				b = b[:len(b)/2]
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}

			q = openT(t, opts)
			recs := readAll(t, q)
			checkPayloads(t, recs)
			st := q.Stats()
			got := map[uint64]bool{}
			for _, r := range recs {
				got[r.Seq] = true
			}
			var missing uint64
			for s := uint64(1); s <= n; s++ {
				if !got[s] {
					missing++
					if s < first || s >= segEnd {
						t.Errorf("seq %d missing outside damaged segment [%d,%d)", s, first, segEnd)
					}
				}
			}
			if missing == 0 || missing > tc.maxLost || st.LostRecords != missing {
				t.Fatalf("missing %d (max %d), stats %+v", missing, tc.maxLost, st)
			}
			if st.QuarantinedBytes == 0 && tc.mutate != nil {
				t.Fatalf("nothing quarantined: %+v", st)
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "*.corrupt")); len(m) == 0 && tc.mutate != nil {
				t.Fatal("no *.corrupt file")
			}
			// The queue continues, and a restart finds nothing new.
			appendSeq(t, q, n+1, 10, 10)
			q.Close()
			q = openT(t, opts)
			st = q.Stats()
			if st.LostRecords != 0 || st.QuarantinedBytes != 0 || st.TruncatedBytes != 0 {
				t.Fatalf("second open: %+v", st)
			}
			recs2 := readAll(t, q)
			checkPayloads(t, recs2)
			if len(recs2) != len(recs)+10 {
				t.Fatalf("second open: %d records, want %d", len(recs2), len(recs)+10)
			}
		})
	}
}

func TestAckFileDamage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(path string) error
	}{
		{"missing", os.Remove},
		{"truncated", func(p string) error { return os.Truncate(p, 10) }},
		{"bit flip", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[9] ^= 1
			return os.WriteFile(p, b, 0o644)
		}},
		{"garbage", func(p string) error { return os.WriteFile(p, []byte("not an ack file at all......"), 0o644) }},
		{"empty", func(p string) error { return os.WriteFile(p, nil, 0o644) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Dir: dir, SegmentBytes: 1024}
			q := openT(t, opts)
			appendSeq(t, q, 1, 100, 10)
			if err := q.Ack(1, 40); err != nil {
				t.Fatal(err)
			}
			if err := q.Ack(60, 70); err != nil {
				t.Fatal(err)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			firstFile, _ := parseSegName(segFiles(t, dir)[0])
			if err := tc.mutate(filepath.Join(dir, ackFileName)); err != nil {
				t.Fatal(err)
			}
			q = openT(t, opts)
			recs := readAll(t, q)
			checkPayloads(t, recs)
			// Everything still on disk is delivered again, including acked records.
			if !slices.Equal(seqs(recs), seqRange(firstFile, 100)) || firstFile > 40 {
				t.Fatalf("first file %d, redelivered %v", firstFile, seqs(recs))
			}
			if st := q.Stats(); st.LostRecords != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestFullBlock(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, Options{Dir: dir, SegmentBytes: 256, MaxBytes: 512})
	rec := bytes.Repeat([]byte("a"), 76) // 100 bytes encoded
	ctx := context.Background()
	var n int
	for {
		c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, _, err := q.Append(c, [][]byte{rec})
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n > 100 {
			t.Fatal("never blocked")
		}
	}
	if st := q.Stats(); st.Bytes > 512 || st.Records != uint64(n) {
		t.Fatalf("full at %d records, stats %+v", n, st)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := q.Append(ctx, [][]byte{rec, rec})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Append returned while full: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	// Acknowledge the first segment: room appears.
	if err := q.Ack(1, 2); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Append still blocked after Ack")
	}
	// CloseAppend wakes a blocked appender with ErrClosed.
	go func() {
		_, _, err := q.Append(ctx, [][]byte{rec, rec, rec, rec, rec})
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	q.CloseAppend()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Append after CloseAppend: %v", err)
	}
}

func TestFullDrop(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, Options{Dir: dir, SegmentBytes: 256, MaxBytes: 512, DropWhenFull: true})
	rec := bytes.Repeat([]byte("a"), 76)
	recs := make([][]byte, 8)
	for i := range recs {
		recs[i] = rec
	}
	first, dropped, err := q.Append(context.Background(), recs)
	if err != nil || first != 1 || dropped == 0 || dropped == 8 {
		t.Fatalf("Append = %d, %d, %v", first, dropped, err)
	}
	_, dropped2, err := q.Append(context.Background(), recs)
	if err != nil || dropped2 != 8 {
		t.Fatalf("second Append dropped %d, %v", dropped2, err)
	}
	st := q.Stats()
	if st.Dropped != uint64(dropped+8) || st.Appended != uint64(8-dropped) || st.Bytes > 512 {
		t.Fatalf("stats %+v", st)
	}
	if err := q.Ack(1, uint64(8-dropped)); err != nil {
		t.Fatal(err)
	}
	if _, d, err := q.Append(context.Background(), recs[:2]); err != nil || d != 0 {
		t.Fatalf("after ack: dropped %d, %v", d, err)
	}
}

func TestTooLarge(t *testing.T) {
	q := openT(t, Options{Dir: t.TempDir(), SegmentBytes: 256, MaxBytes: 512, MaxRecord: 1000})
	for _, size := range []int{1001, 600} {
		if _, _, err := q.Append(context.Background(), [][]byte{[]byte("ok"), make([]byte, size)}); !errors.Is(err, ErrTooLarge) {
			t.Errorf("size %d: %v", size, err)
		}
	}
	if _, n := q.Bounds(); n != 1 {
		t.Fatalf("something was appended: next %d", n)
	}
}

func TestFsyncAlwaysGroupCommit(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, SegmentBytes: 1 << 20, Fsync: FsyncPolicy{Always: true}}
	q := openT(t, opts)
	const goroutines, calls = 16, 30
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := 0; c < calls; c++ {
				if _, _, err := q.Append(context.Background(), [][]byte{[]byte(fmt.Sprintf("%d-%d", g, c))}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := q.Stats()
	t.Logf("%d appends, %d fdatasyncs", goroutines*calls, st.Fsyncs)
	if st.Fsyncs == 0 || st.Fsyncs >= goroutines*calls {
		t.Errorf("fdatasyncs %d for %d appends: no group commit", st.Fsyncs, goroutines*calls)
	}
	q.Close()
	q = openT(t, opts)
	if recs := readAll(t, q); len(recs) != goroutines*calls {
		t.Fatalf("read %d", len(recs))
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, Options{Dir: dir})
	if _, err := Open(Options{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	q2 := openT(t, Options{Dir: dir})
	q2.Close()
}

func TestStickyWriteError(t *testing.T) {
	q := openT(t, Options{Dir: t.TempDir()})
	appendSeq(t, q, 1, 3, 3)
	q.wmu.Lock()
	q.wsf.f.Close() // the fd fails underneath
	q.wmu.Unlock()
	_, _, err1 := q.Append(context.Background(), [][]byte{[]byte("x")})
	if err1 == nil {
		t.Fatal("Append on a closed fd succeeded")
	}
	for i := 0; i < 3; i++ {
		_, _, err := q.Append(context.Background(), [][]byte{[]byte("y")})
		if err == nil || err.Error() != err1.Error() {
			t.Fatalf("Append %d: %v, want sticky %v", i, err, err1)
		}
	}
	if err := q.Sync(); err == nil {
		t.Fatal("Sync succeeded after a write error")
	}
	if st := q.Stats(); st.WriteErr == nil {
		t.Fatal("Stats.WriteErr not set")
	}
	// Reading what was written still works.
	if recs := readAll(t, q); len(recs) != 3 {
		t.Fatalf("read %d", len(recs))
	}
	if err := q.Close(); err == nil {
		t.Fatal("Close did not report the write error")
	}
}

func TestReadBlockingAndLimits(t *testing.T) {
	q := openT(t, Options{Dir: t.TempDir(), SegmentBytes: 4096})
	ctx := context.Background()

	// ctx ends while nothing is there.
	c, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	if _, err := q.Read(c, 1, 10, 0, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read on empty: %v", err)
	}
	cancel()

	// A blocked Read wakes on Append and waits maxWait for more.
	got := make(chan []Record, 1)
	go func() {
		recs, err := q.Read(ctx, 1, 10, 0, 200*time.Millisecond)
		if err != nil {
			t.Error(err)
		}
		got <- recs
	}()
	time.Sleep(20 * time.Millisecond)
	appendSeq(t, q, 1, 1, 1)
	time.Sleep(20 * time.Millisecond)
	appendSeq(t, q, 2, 2, 2)
	if recs := <-got; !slices.Equal(seqs(recs), seqRange(1, 3)) {
		t.Fatalf("batched read %v", seqs(recs))
	}

	// Byte limit: a record bigger than maxBytes comes alone.
	if _, _, err := q.Append(ctx, [][]byte{bytes.Repeat([]byte("z"), 1000), []byte("a"), []byte("b")}); err != nil {
		t.Fatal(err)
	}
	recs, err := q.Read(ctx, 4, 10, 100, 0)
	if err != nil || len(recs) != 1 || recs[0].Seq != 4 {
		t.Fatalf("big read %v %v", seqs(recs), err)
	}
	recs, err = q.Read(ctx, 5, 10, 1, 0)
	if err != nil || len(recs) != 1 || string(recs[0].Data) != "a" {
		t.Fatalf("small read %v %v", seqs(recs), err)
	}
	if recs[0].Appended.IsZero() || time.Since(recs[0].Appended) > time.Minute {
		t.Fatalf("Appended %v", recs[0].Appended)
	}

	// CloseAppend: the rest drains, then ErrClosed.
	q.CloseAppend()
	if _, _, err := q.Append(ctx, [][]byte{[]byte("late")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after CloseAppend: %v", err)
	}
	recs, err = q.Read(ctx, 6, 10, 0, time.Second)
	if err != nil || len(recs) != 1 || string(recs[0].Data) != "b" {
		t.Fatalf("drain %v %v", seqs(recs), err)
	}
	if _, err := q.Read(ctx, 7, 10, 0, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after drain: %v", err)
	}
	q.Close()
	if _, err := q.Read(ctx, 1, 10, 0, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
}

func TestStatsAndSync(t *testing.T) {
	q := openT(t, Options{Dir: t.TempDir(), Fsync: FsyncPolicy{Every: time.Hour}})
	if st := q.Stats(); !st.OldestAppended.IsZero() || st.Records != 0 {
		t.Fatalf("empty stats %+v", st)
	}
	before := time.Now()
	appendSeq(t, q, 1, 10, 10)
	st := q.Stats()
	if st.OldestAppended.Before(before.Add(-time.Second)) || st.OldestAppended.After(time.Now()) || st.Records != 10 || st.Bytes == 0 {
		t.Fatalf("stats %+v", st)
	}
	f0 := st.Fsyncs
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := q.Sync(); err != nil { // nothing new: no fsync
		t.Fatal(err)
	}
	if got := q.Stats().Fsyncs; got != f0+1 {
		t.Fatalf("fsyncs %d → %d", f0, got)
	}
}

func TestLargeRecordsAcrossChunks(t *testing.T) {
	q := openT(t, Options{Dir: t.TempDir(), SegmentBytes: 8 << 20, MaxRecord: 4 << 20})
	var want [][]byte
	for i := 0; i < 6; i++ {
		b := bytes.Repeat([]byte{byte('a' + i)}, 300<<10*(i+1))
		want = append(want, b)
	}
	if _, _, err := q.Append(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, q)
	if len(recs) != len(want) {
		t.Fatalf("read %d", len(recs))
	}
	for i := range recs {
		if !bytes.Equal(recs[i].Data, want[i]) {
			t.Fatalf("record %d differs", i)
		}
	}
}

func TestCorruptionFoundWhileReading(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, Options{Dir: dir, SegmentBytes: 400})
	appendSeq(t, q, 1, 60, 6)
	files := segFiles(t, dir)
	if len(files) < 6 {
		t.Fatalf("files %v", files)
	}
	path := filepath.Join(dir, files[1])
	first, _ := parseSegName(files[1])
	end, _ := parseSegName(files[2])
	offs := recordOffsets(t, path)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, offs[2]+recHeaderSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	recs := readAll(t, q)
	checkPayloads(t, recs)
	want := append(seqRange(1, first+1), seqRange(end, 60)...)
	if !slices.Equal(seqs(recs), want) {
		t.Fatalf("read %v, want %v", seqs(recs), want)
	}
	if st := q.Stats(); st.LostRecords != end-first-2 {
		t.Fatalf("stats %+v", st)
	}
	// A segment file deleted underneath is counted lost too.
	if err := os.Remove(filepath.Join(dir, files[3])); err != nil {
		t.Fatal(err)
	}
	lost0 := q.Stats().LostRecords
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	next, _ := parseSegName(files[3])
	got, err := q.Read(c, next, 1000, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := parseSegName(files[4])
	if got[0].Seq != after || q.Stats().LostRecords != lost0+after-next {
		t.Fatalf("after deleted file: first %d, lost %d", got[0].Seq, q.Stats().LostRecords-lost0)
	}
}

func TestAckRangeCapMeansRedelivery(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, Options{Dir: dir})
	const n = 2300
	appendSeq(t, q, 1, n, 500)
	for s := uint64(2); s <= 2200; s += 2 { // 1100 disjoint ranges
		if err := q.Ack(s, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = openT(t, Options{Dir: dir})
	recs := readAll(t, q)
	checkPayloads(t, recs)
	var want []uint64
	for s := uint64(1); s <= n; s++ {
		if s%2 == 1 || s > 2*maxPersistRanges {
			want = append(want, s)
		}
	}
	if !slices.Equal(seqs(recs), want) {
		t.Fatalf("read %d records, want %d", len(recs), len(want))
	}
	if st := q.Stats(); st.LostRecords != 0 {
		t.Fatalf("stats %+v", st)
	}
}
