package tail

import (
	"bytes"
	"sync"
	"time"
	"unsafe"

	"github.com/sluicelog/sluice/router/event"
)

// Allocation sizes of eventAlloc.
const (
	eventChunk = 64       // events per allocated []event.Event
	rawChunk   = 16 << 10 // bytes per allocated Raw buffer
)

// eventMeta is what every event of one file shares.
type eventMeta struct {
	input, stream, origin, host string
}

// eventAlloc carves events and their Raw bytes out of chunks that are
// filled front to back and never written again once a slot is handed out,
// so consecutive batches share chunks without copying and nothing handed
// to Emit is ever modified. One per reader.
type eventAlloc struct {
	slab []event.Event // current event chunk: len used, cap allocated
	raw  []byte        // current Raw chunk
}

// batch accumulates the events of one Emit and the position to save once
// that Emit returned nil.
type batch struct {
	evs    []*event.Event
	rawLen int
	over   int // lines or records truncated (reason "oversize")

	// What to save after the Emit: the position of file id.
	id      fileID
	path    string
	fp      fingerprint
	off     int64
	commit  bool // save id's position
	unclaim bool // no events: end a claim on id (see runState.claim), forgetting its position if forget
	forget  bool
	token   bool // holds one of the run's batch tokens, released after the Emit
}

func (b *batch) full(s *settings) bool {
	return len(b.evs) >= s.maxBatch || b.rawLen >= s.maxBatchRaw
}

// add copies line into a new event of b.
func (b *batch) add(a *eventAlloc, m *eventMeta, line []byte, recv time.Time) {
	if len(a.slab) == cap(a.slab) {
		a.slab = make([]event.Event, 0, eventChunk)
	}
	a.slab = a.slab[:len(a.slab)+1]
	ev := &a.slab[len(a.slab)-1]
	var raw []byte
	switch n := len(line); {
	case n > rawChunk/4:
		raw = make([]byte, n)
		copy(raw, line)
	default:
		if cap(a.raw)-len(a.raw) < n {
			a.raw = make([]byte, 0, rawChunk)
		}
		off := len(a.raw)
		a.raw = append(a.raw, line...)
		raw = a.raw[off:len(a.raw):len(a.raw)]
	}
	ev.Received = recv
	ev.Time = recv
	ev.Input = m.input
	ev.Stream = m.stream
	ev.Origin = m.origin
	ev.Host = m.host
	ev.Facility, ev.Severity = -1, -1
	ev.Raw = raw
	ev.Message = bytesString(raw)
	if b.evs == nil {
		b.evs = make([]*event.Event, 0, 32)
	}
	b.evs = append(b.evs, ev)
	b.rawLen += len(raw)
}

// bufPool hands out read buffers of one size (2 read chunks), so idle
// files hold no buffer.
type bufPool struct {
	size int
	p    sync.Pool
}

func newBufPool(size int) *bufPool { return &bufPool{size: size} }

func (p *bufPool) get() []byte {
	if b, ok := p.p.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, p.size)
}

func (p *bufPool) put(b []byte) {
	if cap(b) != p.size {
		return
	}
	b = b[:0]
	p.p.Put(&b)
}

// framer cuts a file's bytes into lines, and lines into records when
// multiline is set, adding one event per line or record to a batch. It
// tracks the offset up to which every byte belongs to a line or record
// already added (safe): a position is only ever saved there.
//
// Lines end at LF; a CR before the LF is removed. A line longer than
// maxLine keeps its first maxLine bytes; the rest up to its LF is skipped
// without being buffered. Bytes after the last LF wait for more data
// (finish emits them when the file is closed for good).
type framer struct {
	maxLine int
	ml      *multiline

	buf    []byte // bytes read and not yet framed are buf[pos:]
	pos    int
	bufOff int64 // file offset of buf[0]; bufOff+len(buf) is the read offset

	over      bool   // inside a line longer than maxLine, whose first bytes are overKeep
	overKeep  []byte // owned copy
	overStart int64  // file offset of that line

	rec      []byte // record being assembled (owned), valid when inRec
	inRec    bool
	recStart int64 // file offset of its first line
	recOver  bool  // rec was cut at ml.maxBytes
}

func newFramer(s *settings, off int64) *framer {
	return &framer{maxLine: s.maxLine, ml: s.multiline, bufOff: off}
}

// readOff is the file offset of the next byte to read.
func (fr *framer) readOff() int64 { return fr.bufOff + int64(len(fr.buf)) }

// safe is the offset a position may be saved at: every byte before it
// belongs to a line or record already added to a batch.
func (fr *framer) safe() int64 {
	switch {
	case fr.inRec:
		return fr.recStart
	case fr.over:
		return fr.overStart
	default:
		return fr.bufOff + int64(fr.pos)
	}
}

// pendingRecord reports whether a multiline record waits for its end.
func (fr *framer) pendingRecord() bool { return fr.inRec }

// space returns a slice of n free bytes after the buffered ones, to read
// into; commit them with fill. The buffer comes from pool when the framer
// holds none, and grows (doubling) only while a line longer than the
// pool's buffers is buffered.
func (fr *framer) space(pool *bufPool, n int) []byte {
	if cap(fr.buf)-len(fr.buf) < n && fr.pos > 0 {
		k := copy(fr.buf, fr.buf[fr.pos:])
		fr.buf = fr.buf[:k]
		fr.bufOff += int64(fr.pos)
		fr.pos = 0
	}
	if cap(fr.buf)-len(fr.buf) < n {
		var nb []byte
		if len(fr.buf)+n <= pool.size {
			nb = pool.get()
		} else {
			nb = make([]byte, 0, max(2*cap(fr.buf), len(fr.buf)+n))
		}
		nb = append(nb, fr.buf...)
		pool.put(fr.buf)
		fr.buf = nb
	}
	return fr.buf[len(fr.buf) : len(fr.buf)+n]
}

// fill appends the first n bytes of the slice space returned.
func (fr *framer) fill(n int) { fr.buf = fr.buf[:len(fr.buf)+n] }

// release gives the read buffer back to pool while the file is idle,
// keeping a small owned copy of a partial line if there is one.
func (fr *framer) release(pool *bufPool) {
	if fr.buf == nil {
		return
	}
	rest := fr.buf[fr.pos:]
	if len(rest) > 4<<10 && cap(fr.buf) == pool.size {
		return // a long partial line: keep the buffer rather than copy it
	}
	var keep []byte
	if len(rest) > 0 {
		keep = append([]byte(nil), rest...)
	}
	pool.put(fr.buf)
	fr.bufOff += int64(fr.pos)
	fr.pos = 0
	fr.buf = keep
}

// reset drops everything buffered and pending and restarts at off.
func (fr *framer) reset(pool *bufPool, off int64) {
	if fr.buf != nil {
		pool.put(fr.buf)
	}
	*fr = framer{maxLine: fr.maxLine, ml: fr.ml, bufOff: off, rec: fr.rec[:0], overKeep: fr.overKeep[:0]}
}

// frame adds the buffered complete lines to b until b is full (never, if
// all is set). It returns the number of lines framed.
func (fr *framer) frame(b *batch, s *settings, a *eventAlloc, m *eventMeta, recv time.Time, all bool) int {
	lines := 0
	for all || !b.full(s) {
		data := fr.buf[fr.pos:]
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			// No complete line left: what remains is a partial line.
			if fr.over {
				// Still inside an oversize line: only its head is kept.
				fr.pos = len(fr.buf)
			} else if len(data) > fr.maxLine+1 { // +1: it may end in CR
				fr.over = true
				fr.overStart = fr.bufOff + int64(fr.pos)
				fr.overKeep = append(fr.overKeep[:0], data[:fr.maxLine]...)
				fr.pos = len(fr.buf)
			}
			break
		}
		lines++
		if fr.over {
			fr.over = false
			fr.line(b, a, m, recv, fr.overKeep, fr.overStart, true)
			fr.overKeep = fr.overKeep[:0]
		} else {
			c := data[:i]
			if len(c) > 0 && c[len(c)-1] == '\r' {
				c = c[:len(c)-1]
			}
			over := len(c) > fr.maxLine
			if over {
				c = c[:fr.maxLine]
			}
			fr.line(b, a, m, recv, c, fr.bufOff+int64(fr.pos), over)
		}
		fr.pos += i + 1
	}
	return lines
}

// line handles one complete line c that started at file offset start.
func (fr *framer) line(b *batch, a *eventAlloc, m *eventMeta, recv time.Time, c []byte, start int64, over bool) {
	if over {
		b.over++
	}
	if fr.ml == nil {
		b.add(a, m, c, recv)
		return
	}
	if fr.inRec && fr.ml.start.Match(c) {
		fr.flushRecord(b, a, m, recv)
	}
	if !fr.inRec {
		fr.inRec = true
		fr.recStart = start
		fr.recOver = false
		fr.rec = fr.rec[:0]
		fr.appendRec(b, false, c)
		return
	}
	fr.appendRec(b, true, c)
}

// appendRec appends c to the record, after a LF if sep, keeping at most
// ml.maxBytes bytes.
func (fr *framer) appendRec(b *batch, sep bool, c []byte) {
	n := len(c)
	if sep {
		n++
	}
	room := fr.ml.maxBytes - len(fr.rec)
	if n > room && !fr.recOver {
		fr.recOver = true
		b.over++
	}
	if sep && room > 0 {
		fr.rec = append(fr.rec, '\n')
		room--
	}
	fr.rec = append(fr.rec, c[:min(len(c), max(room, 0))]...)
}

// flushRecord adds the pending record (if any) to b.
func (fr *framer) flushRecord(b *batch, a *eventAlloc, m *eventMeta, recv time.Time) {
	if !fr.inRec {
		return
	}
	b.add(a, m, fr.rec, recv)
	fr.inRec = false
	if cap(fr.rec) > 64<<10 {
		fr.rec = nil // do not pin a large record's buffer while idle
	}
}

// finish adds everything still pending to b: a partial last line (it will
// never be completed: the file is being closed for good) and the last
// record.
func (fr *framer) finish(b *batch, s *settings, a *eventAlloc, m *eventMeta, recv time.Time) {
	fr.frame(b, s, a, m, recv, true)
	switch rest := fr.buf[fr.pos:]; {
	case fr.over:
		fr.over = false
		fr.line(b, a, m, recv, fr.overKeep, fr.overStart, true)
	case len(rest) > 0:
		c := rest
		if c[len(c)-1] == '\r' {
			c = c[:len(c)-1]
		}
		over := len(c) > fr.maxLine
		if over {
			c = c[:fr.maxLine]
		}
		fr.line(b, a, m, recv, c, fr.bufOff+int64(fr.pos), over)
	}
	fr.pos = len(fr.buf)
	fr.flushRecord(b, a, m, recv)
}

// bytesString returns b as a string without copying. b must never change
// afterwards: it is only used on an event's Raw, which is immutable.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
