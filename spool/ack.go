package spool

import (
	"fmt"
	"os"
	"sort"
)

// Ack marks the records [from, to] (inclusive) as delivered. Acks may come
// in any order; seqs below the floor are ignored (already acknowledged).
// The ack state is persisted in the background (at most ~10 times a second)
// and at Close; segments whose every record is acknowledged are deleted
// once the state covering them is on disk. Records acknowledged but not yet
// persisted when the process dies are delivered again after restart.
func (q *Queue) Ack(from, to uint64) error {
	if from > to {
		return fmt.Errorf("%w: [%d,%d]", ErrInvalidAck, from, to)
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if to >= q.next {
		next := q.next
		q.mu.Unlock()
		return fmt.Errorf("%w: [%d,%d] reaches beyond the last appended seq %d", ErrInvalidAck, from, to, next-1)
	}
	added := q.ackLocked(from, to)
	q.mu.Unlock()
	if added > 0 {
		q.acked.Add(added)
		q.kickAck()
	}
	return nil
}

func (q *Queue) kickAck() {
	select {
	case q.ackKick <- struct{}{}:
	default:
	}
}

// ackLocked adds [lo,hi] to the acknowledged set, advances the floor over
// a contiguous prefix and returns how many seqs were newly acknowledged.
// Call with mu held.
func (q *Queue) ackLocked(lo, hi uint64) uint64 {
	if hi < q.floor {
		return 0
	}
	if lo < q.floor {
		lo = q.floor
	}
	rs := q.ranges
	// First range that overlaps or touches [lo,hi].
	i := sort.Search(len(rs), func(k int) bool { return rs[k].hi+1 >= lo })
	j := i
	nlo, nhi := lo, hi
	var covered uint64
	for j < len(rs) && rs[j].lo <= hi+1 {
		nlo, nhi = min(nlo, rs[j].lo), max(nhi, rs[j].hi)
		covered += rs[j].hi - rs[j].lo + 1
		j++
	}
	added := nhi - nlo + 1 - covered
	if added == 0 {
		return 0
	}
	merged := span{nlo, nhi}
	if j == i+1 {
		rs[i] = merged
	} else if j == i {
		rs = append(rs, span{})
		copy(rs[i+1:], rs[i:])
		rs[i] = merged
	} else {
		rs[i] = merged
		rs = append(rs[:i+1], rs[j:]...)
	}
	if len(rs) > 0 && rs[0].lo == q.floor {
		q.floor = rs[0].hi + 1
		rs = rs[1:]
		if len(rs) == 0 {
			rs = nil
		}
	}
	q.ranges = rs
	q.ackDirty = true
	broadcast(&q.spaceCh)
	return added
}

// markLost acknowledges [lo,hi] on behalf of damaged data and counts the
// seqs that were not acknowledged yet as lost.
func (q *Queue) markLost(lo, hi uint64, cause error) {
	q.mu.Lock()
	n := q.ackLocked(lo, hi)
	q.mu.Unlock()
	if n > 0 {
		q.lost.Add(n)
		q.log.Error("spool: records lost to corruption", "first", lo, "last", hi, "count", n, "err", cause)
		q.kickAck()
	}
}

// flushAck persists the ack state if it changed, then deletes the segments
// (other than the active one) that the persisted state fully covers.
func (q *Queue) flushAck() error {
	q.ackMu.Lock()
	defer q.ackMu.Unlock()
	q.mu.Lock()
	if !q.ackDirty {
		q.mu.Unlock()
		return nil
	}
	st := ackState{floor: q.floor}
	if len(q.ranges) <= maxPersistRanges {
		st.ranges = append([]span(nil), q.ranges...)
	} else {
		// Persist a prefix only: what is left out is delivered again after
		// a restart, never lost.
		st.ranges = append([]span(nil), q.ranges[:maxPersistRanges]...)
	}
	q.ackDirty = false
	q.mu.Unlock()

	if err := writeAckFile(q.dir, st); err != nil {
		q.mu.Lock()
		q.ackDirty = true
		q.mu.Unlock()
		q.log.Error("spool: persisting ack state", "err", err)
		return err
	}

	q.mu.Lock()
	var dead []*segment
	keep := make([]*segment, 0, len(q.segs))
	for i, s := range q.segs {
		last := i == len(q.segs)-1
		if !last && (s.end == s.first || st.covers(s.first, s.end-1)) {
			dead = append(dead, s)
			q.toClose = append(q.toClose, s.path)
			continue
		}
		keep = append(keep, s)
	}
	q.segs = keep
	q.mu.Unlock()
	for _, s := range dead {
		if err := os.Remove(s.path); err != nil && !os.IsNotExist(err) {
			q.log.Error("spool: deleting acknowledged segment", "path", s.path, "err", err)
		} else {
			q.log.Debug("spool: deleted acknowledged segment", "path", s.path, "first", s.first, "end", s.end)
		}
	}
	q.closeDeletedReaders()
	return nil
}

// closeDeletedReaders closes the read descriptors of deleted segments now,
// rather than at the next Read (a reader served from elsewhere may not call
// Read for a long time, and an open descriptor keeps the file's space).
// It takes mu, then rmu, never both at once.
func (q *Queue) closeDeletedReaders() {
	q.mu.Lock()
	toClose := q.toClose
	q.toClose = nil
	q.mu.Unlock()
	if len(toClose) == 0 {
		return
	}
	q.rmu.Lock()
	for _, p := range toClose {
		if r, ok := q.readers[p]; ok {
			r.f.Close()
			delete(q.readers, p)
		}
	}
	q.rmu.Unlock()
}
