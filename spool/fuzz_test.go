package spool

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
)

// FuzzOpen builds a small valid queue, applies fuzz-chosen damage to its
// files (truncation, bit flips, zeroed ranges, deleted and duplicated
// segments, garbage ack state) and reopens it: Open must succeed without
// panicking, every record returned must carry a valid, increasing seq and
// exactly the payload appended with that seq, every unacknowledged record
// of a segment file the damage did not touch must be returned, the queue
// must accept appends, and a second Open must find nothing left to repair.
func FuzzOpen(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 1, 50})
	f.Add([]byte{1, 1, 0, 40, 7})
	f.Add([]byte{2, 2, 1, 0, 200})
	f.Add([]byte{3, 1, 0, 0})
	f.Add([]byte{4, 0, 3, 9})
	f.Add([]byte{5, 9, 9, 9})
	f.Add([]byte{6, 0, 0, 12, 1, 3, 0, 90, 2})
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) > 64 {
			prog = prog[:64]
		}
		dir := t.TempDir()
		opts := Options{Dir: dir, SegmentBytes: 512}
		q, err := Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		const n = 60
		for i := uint64(1); i <= n; i += 6 {
			var recs [][]byte
			for k := i; k < i+6; k++ {
				recs = append(recs, payload(k))
			}
			if _, _, err := q.Append(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
		}
		if len(prog) > 0 && prog[0]&1 == 1 {
			q.Ack(1, uint64(prog[0]%40))
			q.Ack(45, 50)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}

		files := func() []string {
			ents, _ := os.ReadDir(dir)
			var out []string
			for _, e := range ents {
				if e.Name() != lockName {
					out = append(out, e.Name())
				}
			}
			sort.Strings(out)
			return out
		}
		// The segment files as written, before any damage.
		orig := map[string][]byte{}
		for _, name := range files() {
			if _, ok := parseSegName(name); ok {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				orig[name] = b
			}
		}
		for len(prog) >= 4 {
			op, fi, a, b := prog[0]%7, prog[1], int(prog[2]), int(prog[3])
			prog = prog[4:]
			fs := files()
			if len(fs) == 0 {
				break
			}
			path := filepath.Join(dir, fs[int(fi)%len(fs)])
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			pos := a<<8 | b
			switch op {
			case 0: // truncate
				if len(data) > 0 {
					data = data[:pos%len(data)]
				}
			case 1: // flip bits
				if len(data) > 0 {
					data[pos%len(data)] ^= byte(b | 1)
				}
			case 2: // zero a range
				if len(data) > 0 {
					p := (a * 7) % len(data)
					clear(data[p:min(len(data), p+b*4)])
				}
			case 3: // delete
				os.Remove(path)
				continue
			case 4: // duplicate under another segment name
				path = filepath.Join(dir, segName(uint64(pos%100+1)))
			case 5: // garbage ack file
				path = filepath.Join(dir, ackFileName)
				data = bytes.Repeat([]byte{byte(a), byte(b)}, b%40)
			case 6: // zero a 512-byte block
				if len(data) > 512 {
					p := pos % (len(data) - 512)
					clear(data[p : p+512])
				}
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}

		mustSurvive := intactRecords(t, dir, orig)

		q, err = Open(opts)
		if err != nil {
			t.Fatalf("Open after damage: %v", err)
		}
		defer q.Close()
		recs := readAll(t, q)
		for i, r := range recs {
			if r.Seq == 0 || r.Seq > n || !bytes.Equal(r.Data, payload(r.Seq)) {
				t.Fatalf("bad record seq %d data %q", r.Seq, r.Data)
			}
			if i > 0 && r.Seq <= recs[i-1].Seq {
				t.Fatalf("seq %d after %d", r.Seq, recs[i-1].Seq)
			}
		}
		for _, r := range recs {
			delete(mustSurvive, r.Seq)
		}
		if len(mustSurvive) > 0 {
			t.Fatalf("%d records of untouched segments missing, e.g. seq %d", len(mustSurvive), slices.Min(slices.Collect(maps.Keys(mustSurvive))))
		}
		first, _, err := q.Append(context.Background(), [][]byte{[]byte("after")})
		if err != nil {
			t.Fatal(err)
		}
		if _, next := q.Bounds(); next != first+1 {
			t.Fatalf("next %d after appending %d", next, first)
		}
		got := readAll(t, q)
		if len(got) != len(recs)+1 || got[len(got)-1].Seq != first {
			t.Fatalf("after append: %d records", len(got))
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		q2, err := Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer q2.Close()
		if st := q2.Stats(); st.TruncatedBytes != 0 || st.QuarantinedBytes != 0 || st.LostRecords != 0 || st.Records != uint64(len(got)) {
			t.Fatalf("second open %+v, want %d records", st, len(got))
		}
		if again := readAll(t, q2); fmt.Sprint(seqs(again)) != fmt.Sprint(seqs(got)) {
			t.Fatalf("second open read %v, want %v", seqs(again), seqs(got))
		}
	})
}

// intactRecords returns the seqs that must survive the damage done to dir:
// the records of each segment file whose bytes are unchanged and whose seq
// range no other segment file's name now falls into (a segment's records
// must stay below the next segment's first seq), minus those the ack file
// now on disk, if it is valid, acknowledges.
func intactRecords(t *testing.T, dir string, orig map[string][]byte) map[uint64]bool {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []uint64
	for _, e := range ents {
		if s, ok := parseSegName(e.Name()); ok {
			names = append(names, s)
		}
	}
	st, ackErr := readAckFile(dir)
	out := map[uint64]bool{}
	for name, want := range orig {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			continue
		}
		first, _ := parseSegName(name)
		locs := segRecords(t, want)
		if len(locs) == 0 {
			continue
		}
		end := locs[len(locs)-1].seq + 1
		if slices.ContainsFunc(names, func(s uint64) bool { return s > first && s < end }) {
			continue
		}
		for _, r := range locs {
			if ackErr != nil || !st.covers(r.seq, r.seq) {
				out[r.seq] = true
			}
		}
	}
	return out
}
