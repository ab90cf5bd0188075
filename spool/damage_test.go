package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// buildSpool writes payload(1..n) to a new queue with the given segment
// size, closes it and returns the directory.
func buildSpool(t *testing.T, segBytes int64, n uint64) string {
	t.Helper()
	dir := t.TempDir()
	q, err := Open(Options{Dir: dir, SegmentBytes: segBytes})
	if err != nil {
		t.Fatal(err)
	}
	appendSeq(t, q, 1, n, 7)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// recLoc is where one record of a segment file lives.
type recLoc struct {
	seq       uint64
	off, size int64
}

// segRecords parses the records of an intact segment file.
func segRecords(t testing.TB, b []byte) []recLoc {
	t.Helper()
	var out []recLoc
	for off := int64(segHeaderSize); off < int64(len(b)); {
		if off+recHeaderSize > int64(len(b)) {
			t.Fatalf("segment ends inside a record header at %d", off)
		}
		h := parseRecHeader(b[off:])
		size := int64(recHeaderSize) + int64(h.n)
		out = append(out, recLoc{seq: h.seq, off: off, size: size})
		off += size
	}
	return out
}

// reopenClean checks that a second Open of dir repairs nothing and serves
// exactly want.
func reopenClean(t *testing.T, opts Options, want []uint64) {
	t.Helper()
	q, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if st := q.Stats(); st.TruncatedBytes != 0 || st.QuarantinedBytes != 0 || st.LostRecords != 0 {
		t.Fatalf("second open repaired again: %+v", st)
	}
	recs := readAll(t, q)
	checkPayloads(t, recs)
	if !slices.Equal(seqs(recs), want) {
		t.Fatalf("second open read %v, want %v", seqs(recs), want)
	}
}

// TestTornTailVariants complements TestTornTailEveryOffset (truncation in a
// one-segment queue): the last record of the last of several segments torn
// at every byte offset by truncation, by zeros or garbage over the rest of
// the file (the size was extended but the data not written), zero bytes
// appended after a complete record, and a new segment whose header was torn
// at every offset. The torn bytes are cut and counted, nothing else is lost
// or quarantined, appends continue at the right seq and a second Open finds
// nothing to repair.
func TestTornTailVariants(t *testing.T) {
	const n = 40
	base := buildSpool(t, 512, n)
	files := segFiles(t, base)
	if len(files) < 3 {
		t.Fatalf("want several segments, got %v", files)
	}
	lastName := files[len(files)-1]
	orig, err := os.ReadFile(filepath.Join(base, lastName))
	if err != nil {
		t.Fatal(err)
	}
	locs := segRecords(t, orig)
	lastRec := locs[len(locs)-1]
	if lastRec.seq != n || lastRec.off+lastRec.size != int64(len(orig)) {
		t.Fatalf("last record %+v in a %d-byte file", lastRec, len(orig))
	}
	rng := rand.New(rand.NewPCG(1, 2))

	type tcase struct {
		name      string
		file      string // file to write
		data      []byte
		want      []uint64 // seqs served after recovery
		truncated uint64
	}
	var cases []tcase
	start, size := lastRec.off, int64(len(orig))
	for cut := start; cut < size; cut++ {
		cases = append(cases, tcase{
			name: fmt.Sprintf("truncate at %d", cut), file: lastName,
			data: slices.Clone(orig[:cut]), want: seqRange(1, n-1), truncated: uint64(cut - start),
		})
		z := slices.Clone(orig)
		clear(z[cut:])
		cases = append(cases, tcase{
			name: fmt.Sprintf("zeros from %d", cut), file: lastName,
			data: z, want: seqRange(1, n-1), truncated: uint64(size - start),
		})
		g := slices.Clone(orig)
		for i := cut; i < size; i++ {
			g[i] ^= byte(1 + rng.IntN(255)) // every byte differs from what was meant
		}
		cases = append(cases, tcase{
			name: fmt.Sprintf("garbage from %d", cut), file: lastName,
			data: g, want: seqRange(1, n-1), truncated: uint64(size - start),
		})
	}
	for k := int64(1); k <= lastRec.size; k++ {
		cases = append(cases, tcase{
			name: fmt.Sprintf("%d zero bytes after the last record", k), file: lastName,
			data: append(slices.Clone(orig), make([]byte, k)...), want: seqRange(1, n), truncated: uint64(k),
		})
	}
	for k := 0; k <= segHeaderSize; k++ {
		trunc := uint64(k)
		if k == segHeaderSize {
			trunc = 0 // a complete header and no record: an empty segment
		}
		cases = append(cases, tcase{
			name: fmt.Sprintf("new segment header torn at %d", k), file: segName(n + 1),
			data: segHeader()[:k], want: seqRange(1, n), truncated: trunc,
		})
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, base, dir)
			if err := os.WriteFile(filepath.Join(dir, tc.file), tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			opts := Options{Dir: dir, SegmentBytes: 512}
			q, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			recs := readAll(t, q)
			checkPayloads(t, recs)
			st := q.Stats()
			if !slices.Equal(seqs(recs), tc.want) {
				t.Fatalf("read %v, want %v", seqs(recs), tc.want)
			}
			if st.TruncatedBytes != tc.truncated || st.LostRecords != 0 || st.QuarantinedBytes != 0 {
				t.Fatalf("truncated %d (want %d), lost %d, quarantined %d", st.TruncatedBytes, tc.truncated, st.LostRecords, st.QuarantinedBytes)
			}
			next := tc.want[len(tc.want)-1] + 1
			if first, _, err := q.Append(context.Background(), [][]byte{payload(next)}); err != nil || first != next {
				t.Fatalf("append after recovery: seq %d, %v; want %d", first, err, next)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			reopenClean(t, opts, append(slices.Clone(tc.want), next))
		})
	}
}

// TestDamageLosesExactlyChangedRecords damages segments in place (one bit
// flipped at every byte of a record in a middle segment and of a record in
// the middle of the last segment, the segment header, zeroed 512-byte
// blocks at every aligned offset of a middle segment, unaligned zeroed
// runs) and checks that recovery loses exactly the records whose bytes
// changed (all of the file's records if its header changed), counts them,
// quarantines the bytes, serves every other record intact, and that a
// second Open finds nothing left to repair.
func TestDamageLosesExactlyChangedRecords(t *testing.T) {
	const n = 300
	const segBytes = 4096
	base := buildSpool(t, segBytes, n)
	files := segFiles(t, base)
	if len(files) < 4 {
		t.Fatalf("want at least 4 segments, got %v", files)
	}
	orig := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(base, f))
		if err != nil {
			t.Fatal(err)
		}
		orig[f] = b
	}
	mid, last := files[1], files[len(files)-1]
	midLocs, lastLocs := segRecords(t, orig[mid]), segRecords(t, orig[last])
	if len(lastLocs) < 5 {
		t.Fatalf("last segment holds %d records; want a middle one", len(lastLocs))
	}

	type tcase struct {
		name   string
		file   string
		mutate func(b []byte)
	}
	var cases []tcase
	flipRecord := func(where, file string, r recLoc) {
		for off := r.off; off < r.off+r.size; off++ {
			cases = append(cases, tcase{
				name: fmt.Sprintf("flip %s record %d byte %d", where, r.seq, off-r.off), file: file,
				mutate: func(b []byte) { b[off] ^= 1 << (off % 8) },
			})
		}
	}
	flipRecord("middle segment", mid, midLocs[len(midLocs)/2])
	flipRecord("last segment", last, lastLocs[len(lastLocs)/2])
	for off := 0; off < segHeaderSize; off++ {
		cases = append(cases, tcase{
			name: fmt.Sprintf("flip segment header byte %d", off), file: mid,
			mutate: func(b []byte) { b[off] ^= 0x20 },
		})
	}
	for off := 0; off < len(orig[mid]); off += 512 {
		cases = append(cases, tcase{
			name: fmt.Sprintf("zero 512 at %d", off), file: mid,
			mutate: func(b []byte) { clear(b[off:min(len(b), off+512)]) },
		})
	}
	for _, z := range [][2]int{{37, 100}, {1001, 3}, {2222, 700}, {segHeaderSize, 1}, {len(orig[mid]) - 1000, 999}} {
		cases = append(cases, tcase{
			name: fmt.Sprintf("zero %d at %d", z[1], z[0]), file: mid,
			mutate: func(b []byte) { clear(b[z[0] : z[0]+z[1]]) },
		})
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, base, dir)
			b := slices.Clone(orig[tc.file])
			tc.mutate(b)
			if err := os.WriteFile(filepath.Join(dir, tc.file), b, 0o644); err != nil {
				t.Fatal(err)
			}
			// Expected loss: records with a changed byte; all of them if
			// the header changed.
			lost := map[uint64]bool{}
			headerHit := !bytes.Equal(b[:segHeaderSize], orig[tc.file][:segHeaderSize])
			for _, r := range segRecords(t, orig[tc.file]) {
				if headerHit || !bytes.Equal(b[r.off:r.off+r.size], orig[tc.file][r.off:r.off+r.size]) {
					lost[r.seq] = true
				}
			}
			if len(lost) == 0 {
				t.Fatal("the mutation changed no record")
			}
			var want []uint64
			for s := uint64(1); s <= n; s++ {
				if !lost[s] {
					want = append(want, s)
				}
			}
			opts := Options{Dir: dir, SegmentBytes: segBytes}
			q, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			recs := readAll(t, q)
			checkPayloads(t, recs)
			if !slices.Equal(seqs(recs), want) {
				t.Fatalf("read %d records, want %d; lost %v", len(recs), len(want), lost)
			}
			st := q.Stats()
			if st.LostRecords != uint64(len(lost)) || st.QuarantinedBytes == 0 || st.TruncatedBytes != 0 {
				t.Fatalf("lost %d (want %d), quarantined %d, truncated %d", st.LostRecords, len(lost), st.QuarantinedBytes, st.TruncatedBytes)
			}
			if f, nx := q.Bounds(); nx != n+1 || f > want[0] {
				t.Fatalf("Bounds %d, %d", f, nx)
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "*.corrupt")); len(m) == 0 {
				t.Fatal("no *.corrupt file")
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			reopenClean(t, opts, want)
		})
	}
}

// rawAck encodes an ack file body (with a valid CRC) from raw fields, so
// that files which are well-formed on the surface but wrong in content can
// be written.
func rawAck(version uint16, floor uint64, n uint32, ranges ...uint64) []byte {
	b := []byte(ackMagic)
	b = binary.LittleEndian.AppendUint16(b, version)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint64(b, floor)
	b = binary.LittleEndian.AppendUint32(b, n)
	for _, r := range ranges {
		b = binary.LittleEndian.AppendUint64(b, r)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// TestAckFileInvalidContent complements TestAckFileDamage: ack files with a
// valid CRC but content that breaks the format's rules, any single bit
// flipped and any truncation of a valid file are rejected, and Open then
// delivers every record on disk again, losing none.
func TestAckFileInvalidContent(t *testing.T) {
	good := encodeAck(ackState{floor: 11, ranges: []span{{20, 30}, {50, 60}}})
	if st, err := decodeAck(good); err != nil || st.floor != 11 || !slices.Equal(st.ranges, []span{{20, 30}, {50, 60}}) {
		t.Fatalf("decodeAck(valid) = %+v, %v", st, err)
	}
	for i := 0; i < len(good)*8; i++ {
		b := slices.Clone(good)
		b[i/8] ^= 1 << (i % 8)
		if _, err := decodeAck(b); !errors.Is(err, errBadAck) {
			t.Fatalf("bit %d flipped: decodeAck = %v; want errBadAck", i, err)
		}
	}
	for k := 0; k < len(good); k++ {
		if _, err := decodeAck(good[:k]); !errors.Is(err, errBadAck) {
			t.Fatalf("truncated to %d: decodeAck = %v; want errBadAck", k, err)
		}
	}

	huge := make([]uint64, 0, 2*(maxPersistRanges+1))
	for i := uint64(0); i <= maxPersistRanges; i++ {
		huge = append(huge, 100+3*i, 100+3*i+1)
	}
	max64 := ^uint64(0)
	cases := []struct {
		name string
		data []byte
	}{
		{"unknown version", rawAck(2, 11, 0)},
		{"floor 0", rawAck(ackVersion, 0, 0)},
		{"more ranges than bytes", rawAck(ackVersion, 11, 2, 20, 30)},
		{"fewer ranges than bytes", rawAck(ackVersion, 11, 1, 20, 30, 50, 60)},
		{"range at the floor", rawAck(ackVersion, 11, 1, 11, 30)},
		{"range below the floor", rawAck(ackVersion, 11, 1, 5, 30)},
		{"range hi < lo", rawAck(ackVersion, 11, 1, 30, 20)},
		{"overlapping ranges", rawAck(ackVersion, 11, 2, 20, 30, 25, 40)},
		{"adjacent ranges", rawAck(ackVersion, 11, 2, 20, 30, 31, 40)},
		{"unsorted ranges", rawAck(ackVersion, 11, 2, 50, 60, 20, 30)},
		{"range up to max uint64", rawAck(ackVersion, 11, 1, 20, max64)},
		{"too many ranges", rawAck(ackVersion, 11, maxPersistRanges+1, huge...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Dir: dir, SegmentBytes: 100000}
			q := openT(t, opts)
			appendSeq(t, q, 1, 80, 10)
			if err := q.Ack(1, 10); err != nil {
				t.Fatal(err)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, ackFileName), tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			if st, err := readAckFile(dir); !errors.Is(err, errBadAck) {
				t.Fatalf("readAckFile = floor %d, %d ranges, %v; want errBadAck", st.floor, len(st.ranges), err)
			}
			q = openT(t, opts)
			recs := readAll(t, q)
			checkPayloads(t, recs)
			if !slices.Equal(seqs(recs), seqRange(1, 80)) {
				t.Fatalf("read %v; want every record again", seqs(recs))
			}
			if st := q.Stats(); st.LostRecords != 0 || st.QuarantinedBytes != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestLeftoverTempFiles: a crash while replacing the ack file or salvaging
// records leaves ack.tmp or *.seg.tmp behind; Open removes them and uses
// the previous ack file.
func TestLeftoverTempFiles(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, SegmentBytes: 512}
	q := openT(t, opts)
	appendSeq(t, q, 1, 50, 5)
	if err := q.Ack(1, 20); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	half := encodeAck(ackState{floor: 41})
	tmps := map[string][]byte{
		ackTmpName:            half[:len(half)/2],
		segName(30) + ".tmp":  append(segHeader(), "partial"...),
		segName(999) + ".tmp": nil,
	}
	for name, b := range tmps {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	q = openT(t, opts)
	if f, nx := q.Bounds(); f != 21 || nx != 51 {
		t.Fatalf("Bounds %d, %d; want 21, 51", f, nx)
	}
	recs := readAll(t, q)
	checkPayloads(t, recs)
	if !slices.Equal(seqs(recs), seqRange(21, 50)) {
		t.Fatalf("read %v", seqs(recs))
	}
	for name := range tmps {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there: %v", name, err)
		}
	}
	if st := q.Stats(); st.LostRecords != 0 || st.QuarantinedBytes != 0 || st.TruncatedBytes != 0 {
		t.Fatalf("stats %+v", st)
	}
}
