package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

const (
	readChunk  = 1 << 20 // largest disk read per step (a bigger record gets its own)
	minChunk   = 64 << 10
	maxReaders = 4 // open segment fds kept for reading
)

// segReader is an open fd on a segment plus the positions where the last
// reads stopped, so that a sequential cursor does not search the index.
type segReader struct {
	f     *os.File
	hints [2]indexEntry // {seq, off}; off == 0: unused
	used  uint64
}

func (r *segReader) setHint(seq uint64, off int64) {
	if r.hints[0].seq != seq {
		r.hints[1] = r.hints[0]
	}
	r.hints[0] = indexEntry{seq: seq, off: off}
}

// Read returns up to maxRecords records and about maxBytes payload bytes
// (maxBytes <= 0: no byte limit; maxRecords <= 0 means 1) with Seq >= from,
// in seq order, skipping records already acknowledged. It always returns at
// least one record: a record larger than maxBytes comes alone. It waits
// until one exists; once it has one it waits up to maxWait for the batch to
// fill. It returns ctx.Err() if ctx ends with nothing read, and ErrClosed
// when the queue is closed for appends and nothing at/after from remains,
// or after Close. A from below the ack floor is raised to it.
//
// The caller owns the cursor (the next from is the last Seq + 1), so it may
// keep several, e.g. one for the backlog and one for the newest records.
// Read never blocks Append on disk I/O.
func (q *Queue) Read(ctx context.Context, from uint64, maxRecords int, maxBytes int64, maxWait time.Duration) ([]Record, error) {
	if maxRecords <= 0 {
		maxRecords = 1
	}
	var (
		out    []Record
		nbytes int64
		timer  *time.Timer
		timerC <-chan time.Time
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			if len(out) > 0 {
				return out, nil
			}
			return nil, ErrClosed
		}
		if from < q.floor {
			from = q.floor
		}
		next, closedAppend, data := q.next, q.closedAppend, q.dataCh
		var segs []segment
		var ranges []span
		if from < next {
			i := sort.Search(len(q.segs), func(k int) bool { return q.segs[k].end > from })
			segs = make([]segment, 0, len(q.segs)-i)
			for _, s := range q.segs[i:] {
				segs = append(segs, *s)
			}
			ranges = append(ranges, q.ranges...)
		}
		toClose := q.toClose
		q.toClose = nil
		q.mu.Unlock()

		if from < next || len(toClose) > 0 {
			var full bool
			q.rmu.Lock()
			for _, p := range toClose {
				if r, ok := q.readers[p]; ok {
					r.f.Close()
					delete(q.readers, p)
				}
			}
			if from < next {
				out, nbytes, from, full = q.readRange(segs, ranges, from, next, out, nbytes, maxRecords, maxBytes)
			}
			rerr := q.readErr
			q.readErr = nil
			q.rmu.Unlock()
			if rerr != nil && len(out) == 0 {
				return nil, rerr
			}
			if full {
				return out, nil
			}
		}
		if len(out) > 0 && maxWait <= 0 {
			return out, nil
		}
		if closedAppend {
			if len(out) > 0 {
				return out, nil
			}
			return nil, ErrClosed
		}
		if len(out) > 0 && timerC == nil {
			timer = time.NewTimer(maxWait)
			timerC = timer.C
		}
		select {
		case <-data:
		case <-timerC:
			return out, nil
		case <-ctx.Done():
			if len(out) > 0 {
				return out, nil
			}
			return nil, ctx.Err()
		}
	}
}

// readRange reads records in [from, next) from segs. It returns the new
// cursor and full=true when a limit stopped it. Call with rmu held.
func (q *Queue) readRange(segs []segment, ranges []span, from, next uint64, out []Record, nbytes int64, maxRecords int, maxBytes int64) ([]Record, int64, uint64, bool) {
	for from < next {
		if len(out) >= maxRecords {
			return out, nbytes, from, true
		}
		if i := searchSpan(ranges, from); i >= 0 {
			from = ranges[i].hi + 1
			continue
		}
		// First segment still holding seqs >= from.
		i := sort.Search(len(segs), func(k int) bool { return segs[k].end > from })
		if i == len(segs) {
			return out, nbytes, next, false
		}
		s := &segs[i]
		if from < s.first { // a gap (acknowledged or lost seqs)
			from = s.first
			continue
		}
		var full bool
		out, nbytes, from, full = q.readSegment(s, ranges, from, out, nbytes, maxRecords, maxBytes)
		if full {
			return out, nbytes, from, true
		}
	}
	return out, nbytes, from, false
}

func (q *Queue) hasSegment(path string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, s := range q.segs {
		if s.path == path {
			return true
		}
	}
	return false
}

// reader returns the cached fd for path, opening it if needed; nil if the
// file is gone (deleted after acknowledgement).
func (q *Queue) reader(path string) (*segReader, error) {
	if q.rclosed {
		return nil, ErrClosed
	}
	q.rtick++
	if r, ok := q.readers[path]; ok {
		r.used = q.rtick
		return r, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if len(q.readers) >= maxReaders {
		var victim string
		var oldest uint64 = ^uint64(0)
		for p, r := range q.readers {
			if r.used < oldest {
				victim, oldest = p, r.used
			}
		}
		q.readers[victim].f.Close()
		delete(q.readers, victim)
	}
	r := &segReader{f: f, used: q.rtick}
	q.readers[path] = r
	return r, nil
}

// readSegment reads records with seq >= from out of one segment (a
// snapshot: only its first s.size bytes are read). It returns the cursor
// after the last record consumed. Damage found here (the file changed under
// us) costs the rest of the segment, which is counted lost.
func (q *Queue) readSegment(s *segment, ranges []span, from uint64, out []Record, nbytes int64, maxRecords int, maxBytes int64) ([]Record, int64, uint64, bool) {
	r, err := q.reader(s.path)
	if err != nil {
		if errors.Is(err, ErrClosed) || (errors.Is(err, os.ErrNotExist) && !q.hasSegment(s.path)) {
			return out, nbytes, s.end, false // deleted after acknowledgement
		}
		if !errors.Is(err, os.ErrNotExist) {
			// EMFILE, EIO, …: nothing is known to be damaged. Stop here
			// without moving the cursor; Read reports it and the caller
			// retries.
			q.readErr = fmt.Errorf("spool: opening %s: %w", s.path, err)
			return out, nbytes, from, true
		}
		q.markLost(from, s.end-1, &CorruptionError{Segment: s.path, Err: err})
		return out, nbytes, s.end, false
	}
	// Start at the closest known record boundary at or before from.
	seq, off := s.first, int64(segHeaderSize)
	if k := sort.Search(len(s.index), func(k int) bool { return s.index[k].seq > from }); k > 0 {
		seq, off = s.index[k-1].seq, s.index[k-1].off
	}
	for _, h := range r.hints {
		if h.off > 0 && h.seq <= from && h.seq > seq && h.seq <= s.end && h.off <= s.size {
			seq, off = h.seq, h.off
		}
	}
	want := int64(readChunk)
	if maxBytes > 0 {
		want = max(minChunk, min(want, maxBytes+int64(recHeaderSize*maxRecords)))
	}
	need := int64(0) // > 0: size of a record that did not fit the last chunk
	full := false
	for seq < s.end && off < s.size && !full {
		n := min(s.size-off, max(want, need))
		buf := make([]byte, n)
		if m, err := r.f.ReadAt(buf, off); int64(m) < n {
			if err != nil && err != io.EOF {
				// An I/O error, not a short file: retry later rather than
				// count records lost.
				q.readErr = fmt.Errorf("spool: reading %s at %d: %w", s.path, off, err)
				return out, nbytes, seq, true
			}
			return q.readDamage(s, seq, off, io.ErrUnexpectedEOF, out, nbytes)
		}
		if n < recHeaderSize {
			return q.readDamage(s, seq, off, errors.New("short record header"), out, nbytes)
		}
		p := int64(0)
		for seq < s.end {
			if len(out) >= maxRecords {
				full = true
				break
			}
			if p+recHeaderSize > n {
				break
			}
			h := parseRecHeader(buf[p:])
			total := int64(recHeaderSize) + int64(h.n)
			if off+p+total > s.size {
				return q.readDamage(s, seq, off+p, fmt.Errorf("record length %d beyond segment end", h.n), out, nbytes)
			}
			if p+total > n {
				break
			}
			if h.seq != seq || !recordCRCOK(buf[p:p+total]) {
				return q.readDamage(s, seq, off+p, fmt.Errorf("bad seq %d (want %d) or crc", h.seq, seq), out, nbytes)
			}
			if seq >= from && searchSpan(ranges, seq) < 0 {
				if maxBytes > 0 && len(out) > 0 && nbytes+int64(h.n) > maxBytes {
					full = true
					break
				}
				data := buf[p+recHeaderSize : p+total : p+total]
				out = append(out, Record{Seq: seq, Data: data, Appended: time.Unix(0, h.ts)})
				nbytes += int64(h.n)
			}
			seq++
			p += total
		}
		need = 0
		if p == 0 && !full && seq < s.end {
			// The record at off does not fit the chunk: read it whole.
			h := parseRecHeader(buf)
			need = int64(recHeaderSize) + int64(h.n)
		}
		off += p
	}
	r.setHint(seq, off)
	return out, nbytes, seq, full
}

// readDamage handles a record that fails verification while reading: the
// rest of the segment, from seq on, is counted lost and skipped.
func (q *Queue) readDamage(s *segment, seq uint64, off int64, cause error, out []Record, nbytes int64) ([]Record, int64, uint64, bool) {
	if r, ok := q.readers[s.path]; ok {
		// Records appended later to this (active) segment follow s.size.
		r.setHint(s.end, s.size)
	}
	if seq < s.end {
		q.markLost(seq, s.end-1, &CorruptionError{Segment: s.path, Offset: off, Err: cause})
	}
	return out, nbytes, s.end, false
}
