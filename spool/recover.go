package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// window serves byte ranges of a file through a reusable buffer.
type window struct {
	f    *os.File
	size int64
	base int64
	buf  []byte
}

func (w *window) bytes(off, n int64) ([]byte, bool) {
	if off < 0 || n < 0 || off+n > w.size {
		return nil, false
	}
	if off >= w.base && off+n <= w.base+int64(len(w.buf)) {
		return w.buf[off-w.base : off-w.base+n], true
	}
	want := min(max(n, 1<<20), w.size-off)
	if int64(cap(w.buf)) < want {
		w.buf = make([]byte, want)
	}
	w.buf = w.buf[:want]
	m, _ := w.f.ReadAt(w.buf, off)
	w.buf, w.base = w.buf[:m], off
	if int64(m) < n {
		return nil, false
	}
	return w.buf[:n], true
}

// run is a stretch of valid consecutive records [first, end) at bytes [off, endOff).
type run struct {
	first, end  uint64
	off, endOff int64
	index       []indexEntry
}

// damage is a stretch of bytes that holds no valid record; resynced is
// false when it reaches the end of the file.
type damage struct {
	off, endOff int64
	resynced    bool
}

// scanSegment verifies every record of a segment whose first record should
// be first. Records must be consecutive and below limit (the next
// segment's first seq). After damage it searches forward for the next
// valid record whose seq is plausible: above the last good one, and at most
// one per recHeaderSize damaged bytes further on.
func scanSegment(w *window, first, limit uint64, maxRec int64) ([]run, []damage) {
	var runs []run
	var dmg []damage
	valid := func(off int64, lo, hi uint64) (recHeader, int64, bool) {
		b, ok := w.bytes(off, recHeaderSize)
		if !ok {
			return recHeader{}, 0, false
		}
		h := parseRecHeader(b)
		if h.seq < lo || h.seq > hi || h.seq >= limit || int64(h.n) > maxRec {
			return h, 0, false
		}
		total := int64(recHeaderSize) + int64(h.n)
		rec, ok := w.bytes(off, total)
		if !ok || !recordCRCOK(rec) {
			return h, 0, false
		}
		return h, total, true
	}
	off, expected := int64(segHeaderSize), first
	cur := run{first: expected, end: expected, off: off, endOff: off}
	lastIdx := int64(-indexEvery)
	for off < w.size {
		h, total, ok := valid(off, expected, expected)
		if ok {
			if off-lastIdx >= indexEvery || cur.end == cur.first {
				cur.index = append(cur.index, indexEntry{seq: expected, off: off, ts: h.ts})
				lastIdx = off
			}
			expected++
			off += total
			cur.end, cur.endOff = expected, off
			continue
		}
		if cur.end > cur.first {
			runs = append(runs, cur)
		}
		start := off
		found := false
		for p := start + 1; p+recHeaderSize <= w.size; p++ {
			hi := expected + uint64((p-start)/recHeaderSize)
			if _, _, ok := valid(p, expected, hi); ok {
				b, _ := w.bytes(p, recHeaderSize)
				expected = parseRecHeader(b).seq
				dmg = append(dmg, damage{off: start, endOff: p, resynced: true})
				off, found = p, true
				break
			}
		}
		if !found {
			dmg = append(dmg, damage{off: start, endOff: w.size})
			off = w.size
		}
		cur = run{first: expected, end: expected, off: off, endOff: off}
		lastIdx = -indexEvery
	}
	if cur.end > cur.first {
		runs = append(runs, cur)
	}
	return runs, dmg
}

// recoverSegment scans one segment file and repairs it: a torn tail of the
// last segment is truncated; other damaged bytes are copied to
// *.corrupt files, valid records after them are moved to new segment files
// named by their first seq, and the file is cut after its first valid run.
// Every step leaves at worst duplicate records behind, which the next scan
// drops (a segment's records must stay below the next segment's first seq).
func (q *Queue) recoverSegment(path string, first, limit uint64, last bool) ([]*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("spool: open segment: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("spool: stat segment: %w", err)
	}
	size := fi.Size()
	w := &window{f: f, size: size}
	if hdr, ok := w.bytes(0, segHeaderSize); !ok || !validSegHeader(hdr) {
		if last && size < segHeaderSize {
			// Crashed while creating the segment.
			q.truncated.Add(uint64(size))
			q.log.Warn("spool: removing segment with torn header", "path", path, "bytes", size)
			if err := os.Remove(path); err != nil {
				return nil, fmt.Errorf("spool: %w", err)
			}
			return nil, nil
		}
		aside := corruptName(path, 0)
		q.quarantined.Add(uint64(size))
		q.log.Error("spool: bad segment header; quarantining the whole file", "path", path, "to", aside, "bytes", size,
			"err", &CorruptionError{Segment: path, Err: errors.New("bad segment header")})
		if err := os.Rename(path, aside); err != nil {
			return nil, fmt.Errorf("spool: quarantine segment: %w", err)
		}
		return nil, nil
	}
	maxRec := int64(hardMaxRecord) // a record written under a larger MaxRecord is still valid
	runs, dmgs := scanSegment(w, first, limit, maxRec)
	w.buf = nil

	if last && len(dmgs) > 0 && !dmgs[len(dmgs)-1].resynced {
		d := dmgs[len(dmgs)-1]
		dmgs = dmgs[:len(dmgs)-1]
		q.truncated.Add(uint64(d.endOff - d.off))
		q.log.Warn("spool: truncating torn tail", "path", path, "offset", d.off, "bytes", d.endOff-d.off)
	}
	for _, d := range dmgs {
		aside := corruptName(path, d.off)
		q.quarantined.Add(uint64(d.endOff - d.off))
		q.log.Error("spool: quarantining damaged records", "path", path, "offset", d.off, "bytes", d.endOff-d.off, "to", aside,
			"err", &CorruptionError{Segment: path, Offset: d.off, Err: errors.New("record fails length, seq or crc check")})
		if err := copyRange(f, d.off, d.endOff-d.off, aside, nil); err != nil {
			q.log.Error("spool: saving damaged bytes aside", "path", aside, "err", err)
		}
	}

	var segs []*segment
	keepEnd := int64(segHeaderSize) // bytes of the original file to keep
	replaced := false
	for _, r := range runs {
		if r.off == segHeaderSize {
			keepEnd = r.endOff
			segs = append(segs, &segment{first: r.first, end: r.end, size: r.endOff, path: path, index: r.index})
			continue
		}
		// Move the run to a file of its own.
		npath := filepath.Join(q.dir, segName(r.first))
		tmp := npath + ".tmp"
		if err := copyRange(f, r.off, r.endOff-r.off, tmp, segHeader()); err != nil {
			return nil, fmt.Errorf("spool: salvage records %d..%d of %s: %w", r.first, r.end-1, path, err)
		}
		if err := os.Rename(tmp, npath); err != nil {
			return nil, fmt.Errorf("spool: salvage records of %s: %w", path, err)
		}
		replaced = replaced || npath == path
		delta := r.off - segHeaderSize
		idx := make([]indexEntry, len(r.index))
		for i, e := range r.index {
			idx[i] = indexEntry{seq: e.seq, off: e.off - delta, ts: e.ts}
		}
		segs = append(segs, &segment{first: r.first, end: r.end, size: r.endOff - delta, path: npath, index: idx})
		q.log.Warn("spool: salvaged records after damage", "from", path, "to", npath, "first", r.first, "last", r.end-1)
	}
	if len(segs) > 0 {
		if err := syncDir(q.dir); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	switch {
	case replaced:
	case keepEnd == segHeaderSize:
		// No valid record stays in this file.
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	case keepEnd < size:
		if err := f.Truncate(keepEnd); err != nil {
			return nil, fmt.Errorf("spool: truncate %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("spool: fsync %s: %w", path, err)
		}
	}
	return segs, nil
}

func corruptName(path string, off int64) string {
	return fmt.Sprintf("%s.%d.%d.corrupt", path, off, time.Now().UnixNano())
}

// recover rebuilds the queue state from the directory; see Open.
func (q *Queue) recover() error {
	entries, err := os.ReadDir(q.dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	var names []uint64
	for _, e := range entries {
		name := e.Name()
		if name == ackTmpName || strings.HasSuffix(name, segExt+".tmp") {
			os.Remove(filepath.Join(q.dir, name))
			continue
		}
		if seq, ok := parseSegName(name); ok && e.Type().IsRegular() {
			names = append(names, seq)
		}
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })

	st, err := readAckFile(q.dir)
	haveAck := err == nil
	switch {
	case haveAck:
	case errors.Is(err, fs.ErrNotExist):
		if len(names) > 0 {
			q.log.Warn("spool: no ack state; delivering every record again")
		}
	default:
		q.log.Error("spool: unreadable ack state; delivering every record again", "err", err)
	}
	if !haveAck {
		st = ackState{floor: 1}
		if len(names) > 0 {
			st.floor = names[0]
		}
	}

	var segs []*segment
	next := st.floor
	for i, first := range names {
		last := i == len(names)-1
		limit := ^uint64(0)
		if !last {
			limit = names[i+1]
		}
		path := filepath.Join(q.dir, segName(first))
		if !last && haveAck && st.covers(first, limit-1) {
			// Acknowledged before the last shutdown; not deleted yet.
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			continue
		}
		got, err := q.recoverSegment(path, first, limit, last)
		if err != nil {
			return err
		}
		segs = append(segs, got...)
		next = max(next, first)
	}
	if len(segs) > 0 {
		next = max(next, segs[len(segs)-1].end)
	}
	if n := len(st.ranges); n > 0 {
		next = max(next, st.ranges[n-1].hi+1)
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	q.floor, q.ranges, q.next, q.segs = st.floor, st.ranges, next, segs
	q.ackDirty = true
	// Seqs in [floor, next) that no segment holds and that are not
	// acknowledged are lost (damaged, truncated or deleted files).
	expect := q.floor
	var lost []span
	for _, s := range segs {
		if s.first > expect {
			lost = append(lost, span{expect, s.first - 1})
		}
		expect = max(expect, s.end)
	}
	if expect < next {
		lost = append(lost, span{expect, next - 1})
	}
	for _, l := range lost {
		if n := q.ackLocked(l.lo, l.hi); n > 0 {
			q.lost.Add(n)
			q.log.Error("spool: records missing from the spool", "first", l.lo, "last", l.hi, "count", n)
		}
	}

	sf, seg, err := q.createSegment(next)
	if err != nil {
		return err
	}
	q.wsf, q.wseg, q.wnext, q.wsize, q.wlastIdx = sf, seg, next, segHeaderSize, segHeaderSize
	q.segs = append(q.segs, seg)
	return nil
}
