package spool

import (
	"slices"
	"testing"
)

// TestReclaimAtOpen: segments that the ack file covers but that were not
// deleted yet (the process died between writing the ack file and deleting
// them) are deleted by Open, exactly those: a partly covered segment stays,
// and the formerly last segment goes once a new active segment exists.
func TestReclaimAtOpen(t *testing.T) {
	dir := buildSpool(t, 300, 120)
	firsts := segFirsts(t, dir)
	if len(firsts) < 8 {
		t.Fatalf("want at least 8 segments, got %v", firsts)
	}
	last := firsts[len(firsts)-1]
	st := ackState{
		floor: firsts[1] + 1, // segment 0 whole, segment 1 partly
		ranges: []span{
			{firsts[3], firsts[4] - 1},     // segment 3 whole
			{firsts[5] + 1, firsts[6] - 1}, // segment 5 all but its first record
			{last, 120},                    // the last segment whole
		},
	}
	if err := writeAckFile(dir, st); err != nil {
		t.Fatal(err)
	}
	q := openT(t, Options{Dir: dir, SegmentBytes: 300})
	var want []string
	for i, f := range firsts {
		if i != 0 && i != 3 && f != last {
			want = append(want, segName(f))
		}
	}
	want = append(want, segName(121)) // the new active segment
	if got := segFiles(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	var wantSeqs []uint64
	for s := uint64(1); s <= 120; s++ {
		if !st.covers(s, s) {
			wantSeqs = append(wantSeqs, s)
		}
	}
	recs := readAll(t, q)
	checkPayloads(t, recs)
	if !slices.Equal(seqs(recs), wantSeqs) {
		t.Fatalf("read %v, want %v", seqs(recs), wantSeqs)
	}
	if f, n := q.Bounds(); f != st.floor || n != 121 {
		t.Fatalf("Bounds %d, %d", f, n)
	}
	if s := q.Stats(); s.LostRecords != 0 || s.Records != uint64(len(wantSeqs)) {
		t.Fatalf("stats %+v", s)
	}
}

// TestRestartFromCrashSnapshotResumesAtPersistedFloor: a copy of the
// directory taken while the queue is open (what a crash leaves, without
// Close) resumes at the ack floor last persisted, with the acknowledged
// ranges above it.
func TestRestartFromCrashSnapshotResumesAtPersistedFloor(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, Options{Dir: dir, SegmentBytes: 400})
	appendSeq(t, q, 1, 100, 6)
	if err := q.Ack(1, 30); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(41, 45); err != nil {
		t.Fatal(err)
	}
	if err := q.flushAck(); err != nil { // the background flush may have run already
		t.Fatal(err)
	}
	snap := t.TempDir()
	copyDir(t, dir, snap)
	q2 := openT(t, Options{Dir: snap, SegmentBytes: 400})
	if f, n := q2.Bounds(); f != 31 || n != 101 {
		t.Fatalf("Bounds %d, %d; want 31, 101", f, n)
	}
	recs := readAll(t, q2)
	checkPayloads(t, recs)
	if want := append(seqRange(31, 40), seqRange(46, 100)...); !slices.Equal(seqs(recs), want) {
		t.Fatalf("read %v", seqs(recs))
	}
	if st := q2.Stats(); st.LostRecords != 0 || st.TruncatedBytes != 0 || st.QuarantinedBytes != 0 {
		t.Fatalf("stats %+v", st)
	}
}
