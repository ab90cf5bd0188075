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

// ErrNoSpool is returned (wrapped, as "no spool at DIR") by Inspect when the
// directory does not exist.
var ErrNoSpool = errors.New("no spool")

// Inspection is what Inspect read from a queue directory: the backlog as
// the files show it, and the damage a later Open would deal with.
type Inspection struct {
	Records   uint64    // pending: valid records at or above Floor that no acknowledged range covers
	Bytes     int64     // record bytes of segments holding pending records (as Stats.Bytes: what MaxBytes bounds)
	DiskBytes int64     // size of every segment file, headers and damage included
	Segments  int       // segment files
	Oldest    time.Time // append time of the oldest pending record; zero if none
	Floor     uint64    // lowest unacknowledged seq, from the ack file (else the first segment's)
	Next      uint64    // the seq after the last one the files account for
	AckRanges int       // acknowledged ranges above Floor in the ack file
	// AckErr is why the ack file could not be used (fs.ErrNotExist if it is
	// missing); nil if it was read. Without it every record is pending, as
	// Open would deliver them all again.
	AckErr error

	// Damage, counted, never repaired.
	TornBytes        int64  // bytes at the end of the last segment that are no complete record: a write in progress, or a torn write (Open truncates them)
	CorruptBytes     int64  // other bytes failing the length, seq or CRC check, and segments with a bad header (Open moves them aside)
	CorruptSegments  int    // segments holding such bytes
	LostRecords      uint64 // unacknowledged seqs below the last one seen that no valid record holds (Open counts them lost)
	QuarantinedFiles int    // *.corrupt files: damaged data an earlier Open moved aside
	QuarantinedBytes int64  // their size
}

// inspectRun is one stretch of valid records found in a segment.
type inspectRun struct {
	first, end uint64
	path       string
	index      []indexEntry
}

// inspectSeg is what Inspect keeps of one segment file.
type inspectSeg struct {
	first uint64
	size  int64
	runs  []inspectRun
	held  uint64 // seqs [first, held) are accounted for (skipped because acknowledged)
}

// Inspect reads the queue in dir without modifying anything: it takes no
// lock, truncates nothing and moves nothing aside, so it may run while a
// Queue (another process) has the directory open. It reads the ack file and
// verifies every segment not already acknowledged record by record, as Open
// does, streaming through each file in chunks of about 1 MiB (or one
// record, if larger). Damage is counted in the result, never returned as an
// error; errors are I/O errors and a missing directory (ErrNoSpool).
//
// The result is a snapshot taken while the queue may be changing: records
// appended after a segment was measured are not counted, and the ack file
// (read again after the segments, so that segments deleted meanwhile are
// covered by it) lags the running queue's acknowledgements by up to about
// 100 ms. An incomplete record at the end of the active segment, which a
// concurrent Append may be writing, ends the scan and counts as TornBytes.
func Inspect(dir string) (Inspection, error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Inspection{}, fmt.Errorf("%w at %s", ErrNoSpool, dir)
	case err != nil:
		return Inspection{}, fmt.Errorf("spool: %w", err)
	case !fi.IsDir():
		return Inspection{}, fmt.Errorf("spool: %s is not a directory", dir)
	}

	// The ack state before the scan only lets covered segments be skipped;
	// the one read after it decides what is pending.
	before, beforeErr := readAckFile(dir)

	entries, err := os.ReadDir(dir)
	if err != nil {
		return Inspection{}, fmt.Errorf("spool: %w", err)
	}
	var in Inspection
	var names []uint64
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".corrupt") {
			if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
				in.QuarantinedFiles++
				in.QuarantinedBytes += info.Size()
			}
			continue
		}
		if seq, ok := parseSegName(name); ok && e.Type().IsRegular() {
			names = append(names, seq)
		}
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })

	var segs []inspectSeg
	for i, first := range names {
		last := i == len(names)-1
		limit := ^uint64(0)
		if !last {
			limit = names[i+1]
		}
		path := filepath.Join(dir, segName(first))
		if !last && beforeErr == nil && before.covers(first, limit-1) {
			// Acknowledged, about to be deleted: nothing to verify.
			info, err := os.Stat(path)
			if err == nil {
				in.Segments++
				in.DiskBytes += info.Size()
				segs = append(segs, inspectSeg{first: first, size: info.Size(), held: limit})
			} else if !errors.Is(err, fs.ErrNotExist) {
				return Inspection{}, fmt.Errorf("spool: %w", err)
			}
			continue
		}
		seg, gone, err := inspectSegment(&in, path, first, limit, last)
		if err != nil {
			return Inspection{}, err
		}
		if gone {
			// Deleted since the listing: the ack state read below covers it.
			continue
		}
		segs = append(segs, seg)
	}

	st, ackErr := readAckFile(dir)
	if ackErr != nil && beforeErr == nil {
		st, ackErr = before, nil // replaced or removed meanwhile: the earlier state is valid
	}
	if ackErr != nil {
		st = ackState{floor: 1}
		if len(names) > 0 {
			st.floor = names[0]
		}
	}
	in.AckErr = ackErr
	in.Floor = st.floor
	in.AckRanges = len(st.ranges)

	// seen: the seq after the last one any segment accounts for. Seqs at or
	// above it may be in files appended or created after they were read.
	seen := st.floor
	for _, s := range segs {
		seen = max(seen, s.first, s.held)
		for _, r := range s.runs {
			seen = max(seen, r.end)
		}
	}
	in.Next = seen
	if n := len(st.ranges); n > 0 {
		in.Next = max(in.Next, st.ranges[n-1].hi+1)
	}

	var oldest *inspectRun
	var oldestSeq uint64
	expect := st.floor
	hold := func(lo, end uint64) {
		if lo > expect {
			in.LostRecords += unackedIn(st, expect, lo)
		}
		expect = max(expect, end)
	}
	for _, s := range segs {
		if s.held > s.first {
			hold(s.first, s.held)
		}
		pending := false
		for k := range s.runs {
			r := &s.runs[k]
			hold(r.first, r.end)
			if n := unackedIn(st, r.first, r.end); n > 0 {
				in.Records += n
				pending = true
				if oldest == nil {
					oldest, oldestSeq = r, firstUnacked(st, r.first)
				}
			}
		}
		if pending {
			in.Bytes += s.size - segHeaderSize
		}
	}
	if expect < seen {
		in.LostRecords += unackedIn(st, expect, seen)
	}
	if oldest != nil {
		in.Oldest = recordTime(oldest, oldestSeq)
	}
	return in, nil
}

// inspectSegment verifies the segment at path (its first record should be
// first, every record below limit), counting its size and damage into in.
// gone reports a file deleted since the directory was listed.
func inspectSegment(in *Inspection, path string, first, limit uint64, last bool) (seg inspectSeg, gone bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return seg, true, nil
	}
	if err != nil {
		return seg, false, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return seg, false, fmt.Errorf("spool: %w", err)
	}
	// Only the bytes present now are read: a concurrent Append may be
	// writing past them.
	size := info.Size()
	in.Segments++
	in.DiskBytes += size
	seg = inspectSeg{first: first, size: size}
	w := &window{f: f, size: size}
	if hdr, ok := w.bytes(0, segHeaderSize); !ok || !validSegHeader(hdr) {
		if last && size < segHeaderSize {
			in.TornBytes += size // being created, or torn while created
		} else {
			in.CorruptBytes += size
			in.CorruptSegments++
		}
		return seg, false, nil
	}
	runs, dmgs := scanSegment(w, first, limit, hardMaxRecord)
	if last && len(dmgs) > 0 && !dmgs[len(dmgs)-1].resynced {
		d := dmgs[len(dmgs)-1]
		dmgs = dmgs[:len(dmgs)-1]
		in.TornBytes += d.endOff - d.off
	}
	for _, d := range dmgs {
		in.CorruptBytes += d.endOff - d.off
	}
	if len(dmgs) > 0 {
		in.CorruptSegments++
	}
	for _, r := range runs {
		seg.runs = append(seg.runs, inspectRun{first: r.first, end: r.end, path: path, index: r.index})
	}
	return seg, false, nil
}

// unackedIn counts the seqs in [lo, end) that st does not acknowledge.
func unackedIn(st ackState, lo, end uint64) uint64 {
	lo = max(lo, st.floor)
	if lo >= end {
		return 0
	}
	n := end - lo
	for i := sort.Search(len(st.ranges), func(k int) bool { return st.ranges[k].hi >= lo }); i < len(st.ranges); i++ {
		r := st.ranges[i]
		if r.lo >= end {
			break
		}
		n -= min(r.hi+1, end) - max(r.lo, lo)
	}
	return n
}

// firstUnacked returns the lowest seq >= lo that st does not acknowledge.
func firstUnacked(st ackState, lo uint64) uint64 {
	lo = max(lo, st.floor)
	if i := searchSpan(st.ranges, lo); i >= 0 {
		lo = st.ranges[i].hi + 1 // ranges are never adjacent
	}
	return lo
}

// recordTime returns the append time of record seq of run r: exact if the
// record can be read again, else that of the closest indexed record before
// it (the file was deleted or changed meanwhile).
func recordTime(r *inspectRun, seq uint64) time.Time {
	if len(r.index) == 0 {
		return time.Time{}
	}
	k := sort.Search(len(r.index), func(k int) bool { return r.index[k].seq > seq }) - 1
	if k < 0 {
		k = 0
	}
	e := r.index[k]
	approx := time.Unix(0, e.ts)
	f, err := os.Open(r.path)
	if err != nil {
		return approx
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return approx
	}
	w := &window{f: f, size: info.Size()}
	off := e.off
	for s := e.seq; ; s++ {
		b, ok := w.bytes(off, recHeaderSize)
		if !ok {
			return approx
		}
		h := parseRecHeader(b)
		if h.seq != s {
			return approx
		}
		if s == seq {
			return time.Unix(0, h.ts)
		}
		off += recHeaderSize + int64(h.n)
	}
}
