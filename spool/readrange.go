package spool

import "sort"

// ReadRange is Read bounded above and without waiting: it returns the
// unacknowledged records with from <= Seq < to, up to maxRecords records
// and maxBytes bytes (a record larger than maxBytes comes alone), in seq
// order. An empty result means there are none. A from below the ack floor
// is raised to it. It returns ErrClosed after Close.
//
// It serves a reader that keeps a second cursor over a fixed range of
// older records (the router's live-first backlog).
func (q *Queue) ReadRange(from, to uint64, maxRecords int, maxBytes int64) ([]Record, error) {
	if maxRecords <= 0 {
		maxRecords = 1
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil, ErrClosed
	}
	from = max(from, q.floor)
	to = min(to, q.next)
	if from >= to {
		q.mu.Unlock()
		return nil, nil
	}
	i := sort.Search(len(q.segs), func(k int) bool { return q.segs[k].end > from })
	segs := make([]segment, 0, len(q.segs)-i)
	for _, s := range q.segs[i:] {
		segs = append(segs, *s)
	}
	ranges := append([]span(nil), q.ranges...)
	q.mu.Unlock()

	q.rmu.Lock()
	out, _, _, _ := q.readRange(segs, ranges, from, to, nil, 0, maxRecords, maxBytes)
	rerr := q.readErr
	q.readErr = nil
	q.rmu.Unlock()
	if rerr != nil && len(out) == 0 {
		return nil, rerr
	}
	// readRange stops at segment ends, not at to.
	n := sort.Search(len(out), func(k int) bool { return out[k].Seq >= to })
	return out[:n], nil
}
