package spool

import (
	"context"
	"testing"
)

func TestAppendSeqs(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, Options{Dir: dir, SegmentBytes: 4096, MaxBytes: 8192, DropWhenFull: true})
	defer q.Close()
	recs := make([][]byte, 5)
	for i := range recs {
		recs[i] = []byte{byte('a' + i)}
	}
	if _, _, err := q.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	seqs := make([]uint64, 5)
	if dropped, err := q.AppendSeqs(context.Background(), recs, seqs); err != nil || dropped != 0 {
		t.Fatalf("AppendSeqs = %d, %v", dropped, err)
	}
	for i, s := range seqs {
		if s != uint64(6+i) {
			t.Fatalf("seqs = %v; want 6..10", seqs)
		}
	}
	// Fill the queue: records that do not fit are dropped and get seq 0.
	big := make([][]byte, 200)
	for i := range big {
		big[i] = make([]byte, 100)
	}
	bigSeqs := make([]uint64, len(big))
	dropped, err := q.AppendSeqs(context.Background(), big, bigSeqs)
	if err != nil || dropped == 0 || dropped == len(big) {
		t.Fatalf("AppendSeqs on a filling queue = %d dropped, %v; want some dropped", dropped, err)
	}
	kept := len(big) - dropped
	for i, s := range bigSeqs {
		if (i < kept) != (s != 0) || (i < kept && s != 11+uint64(i)) {
			t.Fatalf("record %d got seq %d (kept %d)", i, s, kept)
		}
	}
}
