package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Errors returned by the queue.
var (
	// ErrClosed is returned by Append after CloseAppend or Close, and by Read
	// once the queue is closed for appends and nothing at/after the cursor
	// remains (or after Close).
	ErrClosed = errors.New("spool: queue closed")
	// ErrLocked is returned by Open when another process (or another Queue in
	// this process) holds the directory's LOCK.
	ErrLocked = errors.New("spool: queue directory is locked by another user")
	// ErrTooLarge is returned by Append for a record longer than MaxRecord,
	// or whose encoded size exceeds MaxBytes (it could never fit).
	ErrTooLarge = errors.New("spool: record too large")
	// ErrInvalidAck is returned by Ack for an empty range or one reaching
	// seqs that were never appended.
	ErrInvalidAck = errors.New("spool: invalid ack range")
)

// CorruptionError describes damaged data found in a segment. It is logged
// (and returned by nothing that would stop the queue).
type CorruptionError struct {
	Segment string // file path
	Offset  int64  // byte offset of the damage
	Err     error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("spool: corrupt segment %s at offset %d: %v", e.Segment, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

// FsyncPolicy says when appended data is forced to disk. The zero value is
// "never": fsync only at segment roll, Sync and Close.
type FsyncPolicy struct {
	Always bool          // Append returns after fdatasync (group-committed)
	Every  time.Duration // > 0: a ticker fsyncs this often; Append returns after write(2)
}

// ParseFsync parses "always", "never" or a positive Go duration ("1s").
func ParseFsync(s string) (FsyncPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "always":
		return FsyncPolicy{Always: true}, nil
	case "never":
		return FsyncPolicy{}, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return FsyncPolicy{}, fmt.Errorf("spool: fsync %q: want \"always\", \"never\" or a duration: %w", s, err)
	}
	if d <= 0 {
		return FsyncPolicy{}, fmt.Errorf("spool: fsync %q: duration must be positive", s)
	}
	return FsyncPolicy{Every: d}, nil
}

func (p FsyncPolicy) String() string {
	switch {
	case p.Always:
		return "always"
	case p.Every > 0:
		return p.Every.String()
	}
	return "never"
}

// Options configure Open.
type Options struct {
	Dir          string       // queue directory; created if missing
	SegmentBytes int64        // target segment size; default 64 MiB
	MaxBytes     int64        // 0 = unlimited; bytes of segments not fully acknowledged
	MaxRecord    int          // largest payload accepted; default 16 MiB
	Fsync        FsyncPolicy  // zero value = never
	DropWhenFull bool         // false: Append blocks while full; true: drop what does not fit
	Logger       *slog.Logger // nil = discard
}

// Defaults for Options.
const (
	DefaultSegmentBytes = 64 << 20
	DefaultMaxRecord    = 16 << 20
	minSegmentBytes     = 64
)

// Record is one record handed out by Read. Data is owned by the caller.
type Record struct {
	Seq      uint64
	Data     []byte
	Appended time.Time
}

// Stats is a snapshot of the queue's counters.
type Stats struct {
	Records          uint64        // unacknowledged records
	Bytes            int64         // record bytes of segments holding unacknowledged records (what MaxBytes bounds)
	Segments         int           // segment files in use
	OldestAppended   time.Time     // approx. append time of the oldest unacked record; zero if empty
	Appended         uint64        // records appended since Open
	Acked            uint64        // records newly acknowledged since Open
	Dropped          uint64        // records dropped because the queue was full (DropWhenFull)
	TruncatedBytes   uint64        // torn-tail bytes cut off at Open
	QuarantinedBytes uint64        // damaged bytes moved aside (*.corrupt) at Open
	LostRecords      uint64        // seqs found missing or damaged (at Open or while reading)
	Fsyncs           uint64        // fdatasync calls on segment files
	FsyncTime        time.Duration // their total duration
	LastFsync        time.Duration // the latest one's duration
	WriteErr         error         // sticky write/fsync error, nil if none
}

// segment is one segment file: records [first, end) occupying bytes
// [segHeaderSize, size). Mutable fields are guarded by Queue.mu.
type segment struct {
	first uint64
	end   uint64
	size  int64
	path  string
	index []indexEntry // sparse: first record, then one every indexEvery bytes
}

type indexEntry struct {
	seq uint64
	off int64
	ts  int64
}

// segFile is the writer's handle on the active segment. Its RWMutex keeps
// the fd open while a concurrent fdatasync runs outside the writer lock.
type segFile struct {
	mu     sync.RWMutex
	f      *os.File
	path   string
	closed bool
}

// Queue is a durable FIFO of opaque byte records on disk, numbered by a
// sequence that grows by one per record. Append may be called from many
// goroutines; Read, Ack, Bounds and Stats are meant for one worker but are
// safe for concurrent use. Delivery is at-least-once: see the package doc.
type Queue struct {
	readErr error // a transient read error for Read to report; guarded by rmu

	opts Options
	log  *slog.Logger
	dir  string
	lock *os.File

	// Writer state, guarded by wmu. Lock order: wmu → mu.
	wmu      sync.Mutex
	wsf      *segFile
	wseg     *segment
	wnext    uint64
	wsize    int64
	wlastIdx int64
	wbuf     []byte
	widx     []indexEntry
	wclosed  bool
	writeGen uint64 // writes done; guarded by wmu

	syncedGen atomic.Uint64 // writeGen covered by a completed fsync
	werr      atomic.Pointer[error]

	// Group commit (Fsync.Always).
	gcMu      sync.Mutex
	gcPending []*commitReq
	gcLeading bool

	// Shared state, guarded by mu.
	mu           sync.Mutex
	segs         []*segment // ascending; the last one is the active segment
	next         uint64     // seq the next Append gets (all below are readable)
	floor        uint64     // lowest unacknowledged seq
	ranges       []span     // acknowledged ranges above floor
	ackDirty     bool
	reserved     int64
	closedAppend bool
	closed       bool
	dataCh       chan struct{} // closed and replaced when records become readable
	spaceCh      chan struct{} // closed and replaced when room may have appeared
	toClose      []string      // deleted segment paths whose reader fds must go

	// Reader fds, guarded by rmu (held only during disk reads).
	rmu     sync.Mutex
	readers map[string]*segReader
	rtick   uint64
	rclosed bool

	ackMu   sync.Mutex // serialises ack-file writes and reclaim
	ackKick chan struct{}
	stop    chan struct{}
	bgDone  chan struct{}

	closeOnce sync.Once
	closeErr  error

	appended, acked, dropped     atomic.Uint64
	truncated, quarantined, lost atomic.Uint64
	fsyncs                       atomic.Uint64
	lastFsync                    atomic.Int64
	fsyncTime                    atomic.Int64
}

// Open opens (creating if needed) the queue in opts.Dir, takes its LOCK and
// recovers its content: a torn tail is truncated, damaged data elsewhere is
// moved aside and counted lost, a bad ack file means redelivery. Open fails
// only on invalid options, a held lock or I/O errors, never on bad data.
// New appends always go to a new segment.
func Open(opts Options) (*Queue, error) {
	if opts.Dir == "" {
		return nil, errors.New("spool: Options.Dir is empty")
	}
	if opts.SegmentBytes == 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.MaxRecord == 0 {
		opts.MaxRecord = DefaultMaxRecord
	}
	switch {
	case opts.SegmentBytes < minSegmentBytes:
		return nil, fmt.Errorf("spool: SegmentBytes %d below minimum %d", opts.SegmentBytes, minSegmentBytes)
	case opts.MaxRecord < 0 || opts.MaxRecord > hardMaxRecord:
		return nil, fmt.Errorf("spool: MaxRecord %d out of range (1..%d)", opts.MaxRecord, hardMaxRecord)
	case opts.MaxBytes < 0:
		return nil, fmt.Errorf("spool: MaxBytes %d is negative", opts.MaxBytes)
	case opts.MaxBytes > 0 && opts.MaxBytes < 2*opts.SegmentBytes:
		return nil, fmt.Errorf("spool: MaxBytes %d must be at least twice SegmentBytes %d (space is reclaimed a whole segment at a time)", opts.MaxBytes, opts.SegmentBytes)
	case opts.Fsync.Every < 0:
		return nil, fmt.Errorf("spool: negative fsync interval %v", opts.Fsync.Every)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("spool", opts.Dir)
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	lock, err := acquireLock(opts.Dir)
	if err != nil {
		return nil, err
	}
	q := &Queue{
		opts:    opts,
		log:     log,
		dir:     opts.Dir,
		lock:    lock,
		dataCh:  make(chan struct{}),
		spaceCh: make(chan struct{}),
		readers: make(map[string]*segReader),
		ackKick: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		bgDone:  make(chan struct{}),
	}
	if err := q.recover(); err != nil {
		lock.Close()
		return nil, err
	}
	if err := q.flushAck(); err != nil {
		q.log.Error("spool: persisting ack state after recovery", "err", err)
	}
	go q.bg()
	return q, nil
}

func acquireLock(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("spool: lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("spool: lock %s: %w", dir, err)
	}
	return f, nil
}

// broadcast closes *ch and replaces it. Call with mu held.
func broadcast(ch *chan struct{}) {
	close(*ch)
	*ch = make(chan struct{})
}

func (q *Queue) stickyErr() error {
	if p := q.werr.Load(); p != nil {
		return *p
	}
	return nil
}

// setSticky records the first write/fsync error; later appends return it.
func (q *Queue) setSticky(err error) error {
	if q.werr.CompareAndSwap(nil, &err) {
		q.log.Error("spool: write failure; the queue refuses further appends", "err", err)
	}
	return q.stickyErr()
}

// Append adds recs as consecutive records and returns the seq of the first
// one appended (0 if none), and how many were dropped because the queue was
// full (DropWhenFull). With DropWhenFull=false it waits for room (freed by
// Ack) and returns ctx.Err() if ctx ends first; records appended before that
// stay, and the records of one call are consecutive unless it had to wait
// midway. It returns when the records are written (Fsync.Always: fsynced).
// A record over MaxRecord, or one that could never fit in MaxBytes, fails
// the whole call with ErrTooLarge before anything is written. After a write
// or fsync error every Append returns that error.
func (q *Queue) Append(ctx context.Context, recs [][]byte) (first uint64, dropped int, err error) {
	dropped, err = q.append(ctx, recs, func(s uint64, _ int) {
		if first == 0 {
			first = s
		}
	})
	return first, dropped, err
}

// AppendWritten is Append calling written(first, i, n) as soon as records
// recs[i:i+n] are written with seqs first..first+n-1 — before they are
// fsynced under Fsync.Always, so possibly before AppendWritten returns and
// on another appender's goroutine (the group-commit leader). written must
// be quick and must not call the Queue. It lets a caller serve a reader
// from memory without the reader finding the records on disk first.
func (q *Queue) AppendWritten(ctx context.Context, recs [][]byte, written func(first uint64, i, n int)) (dropped int, err error) {
	off := 0
	return q.append(ctx, recs, func(s uint64, n int) {
		written(s, off, n)
		off += n
	})
}

// AppendSeqs is Append reporting the sequence number of every record:
// seqs[i] is set to the seq recs[i] was written with, or 0 if it was not
// written (dropped, or the call failed first). len(seqs) must be at least
// len(recs). It lets a caller index what it appended, for example to serve
// a reader from memory.
func (q *Queue) AppendSeqs(ctx context.Context, recs [][]byte, seqs []uint64) (dropped int, err error) {
	clear(seqs[:len(recs)])
	off := 0
	return q.append(ctx, recs, func(s uint64, n int) {
		for i := range n {
			seqs[off+i] = s + uint64(i)
		}
		off += n
	})
}

// append writes recs in chunks that fit, calling chunk(first, n) for each
// chunk as soon as it is written (in order; the chunks together are a
// prefix of recs; see AppendWritten for where it runs).
func (q *Queue) append(ctx context.Context, recs [][]byte, chunk func(first uint64, n int)) (dropped int, err error) {
	for _, r := range recs {
		if len(r) > q.opts.MaxRecord {
			return 0, fmt.Errorf("%w: %d bytes > MaxRecord %d", ErrTooLarge, len(r), q.opts.MaxRecord)
		}
		if q.opts.MaxBytes > 0 && int64(recHeaderSize+len(r)) > q.opts.MaxBytes {
			return 0, fmt.Errorf("%w: %d bytes > MaxBytes %d", ErrTooLarge, len(r), q.opts.MaxBytes)
		}
	}
	for len(recs) > 0 {
		n, resv, space, err := q.reserve(recs)
		if err != nil {
			return dropped, err
		}
		if n == 0 {
			if q.opts.DropWhenFull {
				q.dropped.Add(uint64(len(recs)))
				return dropped + len(recs), nil
			}
			select {
			case <-space:
				continue
			case <-ctx.Done():
				return dropped, ctx.Err()
			}
		}
		if err := q.commit(recs[:n], resv, func(first uint64) { chunk(first, n) }); err != nil {
			return dropped, err
		}
		recs = recs[n:]
		if len(recs) > 0 && q.opts.DropWhenFull {
			q.dropped.Add(uint64(len(recs)))
			return dropped + len(recs), nil
		}
	}
	return dropped, nil
}

// reserve claims room for the longest prefix of recs that fits.
func (q *Queue) reserve(recs [][]byte) (n int, resv int64, space <-chan struct{}, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closedAppend {
		return 0, 0, nil, ErrClosed
	}
	if err := q.stickyErr(); err != nil {
		return 0, 0, nil, err
	}
	limited := q.opts.MaxBytes > 0
	var room int64
	if limited {
		room = q.opts.MaxBytes - q.usedLocked() - q.reserved
	}
	for _, r := range recs {
		sz := int64(recHeaderSize + len(r))
		if limited && resv+sz > room {
			break
		}
		resv += sz
		n++
	}
	q.reserved += resv
	return n, resv, q.spaceCh, nil
}

// usedLocked sums the record bytes of segments holding unacknowledged
// records (segment headers are not counted).
func (q *Queue) usedLocked() int64 {
	var used int64
	st := ackState{floor: q.floor, ranges: q.ranges}
	for _, s := range q.segs {
		if s.end > s.first && st.covers(s.first, s.end-1) {
			continue
		}
		used += s.size - segHeaderSize
	}
	return used
}

type commitReq struct {
	recs    [][]byte
	written func(first uint64) // called once the records are written, before fsync
	first   uint64
	err     error
	wake    chan bool // true: become the leader; false: done
}

// commit writes recs (and under Fsync.Always fsyncs them), then releases
// the reservation.
// written is called with the records' first seq once they are written
// (before any fsync), unless the write fails.
func (q *Queue) commit(recs [][]byte, resv int64, written func(first uint64)) error {
	defer func() {
		q.mu.Lock()
		q.reserved -= resv
		// The reserved bytes were counted twice until now (written and
		// reserved): waiting appenders may fit, or see a write error.
		broadcast(&q.spaceCh)
		q.mu.Unlock()
	}()
	if q.opts.Fsync.Always {
		return q.groupCommit(recs, written)
	}
	req := commitReq{recs: recs}
	q.wmu.Lock()
	err := q.writeLocked([]*commitReq{&req})
	q.wmu.Unlock()
	if err == nil {
		written(req.first)
	}
	return err
}

// groupCommit: the first caller becomes the leader and writes every pending
// request in one write(2) and one fdatasync; then it hands leadership to the
// next pending caller, if any, so no caller serves others indefinitely.
func (q *Queue) groupCommit(recs [][]byte, written func(first uint64)) error {
	req := &commitReq{recs: recs, written: written, wake: make(chan bool, 1)}
	q.gcMu.Lock()
	q.gcPending = append(q.gcPending, req)
	if q.gcLeading {
		q.gcMu.Unlock()
		if lead := <-req.wake; !lead {
			return req.err
		}
		q.gcMu.Lock()
	} else {
		q.gcLeading = true
	}
	batch := q.gcPending
	q.gcPending = nil
	q.gcMu.Unlock()

	q.wmu.Lock()
	err := q.writeLocked(batch)
	gen, sf := q.writeGen, q.wsf
	q.wmu.Unlock()
	if err == nil {
		for _, r := range batch {
			r.written(r.first)
		}
		err = q.syncTo(sf, gen)
	}
	for _, r := range batch {
		r.err = err
	}
	q.gcMu.Lock()
	if len(q.gcPending) > 0 {
		q.gcPending[0].wake <- true
	} else {
		q.gcLeading = false
	}
	q.gcMu.Unlock()
	for _, r := range batch {
		if r != req {
			r.wake <- false
		}
	}
	return req.err
}

// writeLocked encodes reqs into one buffer and writes it to the active
// segment, rolling first whenever a record would overflow SegmentBytes.
// Call with wmu held.
func (q *Queue) writeLocked(reqs []*commitReq) error {
	if q.wclosed {
		return ErrClosed
	}
	if err := q.stickyErr(); err != nil {
		return err
	}
	ts := time.Now().UnixNano()
	buf, idx := q.wbuf[:0], q.widx[:0]
	seq := q.wnext
	var err error
	for _, r := range reqs {
		r.first = seq
		for _, p := range r.recs {
			sz := int64(recHeaderSize + len(p))
			pending := q.wsize + int64(len(buf))
			if pending+sz > q.opts.SegmentBytes && pending > segHeaderSize {
				if err = q.flushLocked(buf, seq, idx); err != nil {
					break
				}
				buf, idx = buf[:0], idx[:0]
				if err = q.rollLocked(seq); err != nil {
					break
				}
				pending = q.wsize
			}
			if seq == q.wseg.first || pending-q.wlastIdx >= indexEvery {
				idx = append(idx, indexEntry{seq: seq, off: pending, ts: ts})
				q.wlastIdx = pending
			}
			buf = appendRecord(buf, seq, ts, p)
			seq++
		}
		if err != nil {
			break
		}
	}
	if err == nil {
		err = q.flushLocked(buf, seq, idx)
	}
	if cap(buf) <= 8<<20 {
		q.wbuf = buf[:0]
	} else {
		q.wbuf = nil
	}
	q.widx = idx[:0]
	return err
}

// flushLocked writes buf (records up to next-1) and publishes them.
func (q *Queue) flushLocked(buf []byte, next uint64, idx []indexEntry) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := q.wsf.f.Write(buf)
	if err != nil {
		return q.setSticky(fmt.Errorf("spool: write %s: %w", q.wsf.path, err))
	}
	q.wsize += int64(n)
	q.writeGen++
	q.mu.Lock()
	added := next - q.wseg.end
	q.wseg.end = next
	q.wseg.size = q.wsize
	q.wseg.index = append(q.wseg.index, idx...)
	q.next = next
	broadcast(&q.dataCh)
	q.mu.Unlock()
	q.wnext = next
	q.appended.Add(added)
	return nil
}

// rollLocked fsyncs and closes the active segment and starts a new one
// whose first record will be seq. Call with wmu held.
func (q *Queue) rollLocked(seq uint64) error {
	if err := q.closeSegFile(q.wsf, true); err != nil {
		return q.setSticky(err)
	}
	q.syncedGen.Store(q.writeGen)
	sf, seg, err := q.createSegment(seq)
	if err != nil {
		return q.setSticky(err)
	}
	q.wsf, q.wseg, q.wsize, q.wlastIdx = sf, seg, segHeaderSize, segHeaderSize
	q.mu.Lock()
	q.segs = append(q.segs, seg)
	q.mu.Unlock()
	return nil
}

// createSegment creates <first>.seg with its header and fsyncs the directory.
func (q *Queue) createSegment(first uint64) (*segFile, *segment, error) {
	path := filepath.Join(q.dir, segName(first))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if errors.Is(err, os.ErrExist) {
		// Not expected after recovery; keep whatever is there aside.
		aside := fmt.Sprintf("%s.%d.corrupt", path, time.Now().UnixNano())
		q.log.Error("spool: segment file already exists; moving it aside", "path", path, "to", aside)
		if rerr := os.Rename(path, aside); rerr == nil {
			f, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("spool: create segment: %w", err)
	}
	if _, err = f.Write(segHeader()); err == nil {
		err = syncDir(q.dir)
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("spool: create segment %s: %w", path, err)
	}
	return &segFile{f: f, path: path}, &segment{first: first, end: first, size: segHeaderSize, path: path}, nil
}

// datasync fdatasyncs sf unless it was already closed (closing syncs).
func (q *Queue) datasync(sf *segFile) error {
	sf.mu.RLock()
	defer sf.mu.RUnlock()
	if sf.closed {
		return nil
	}
	return q.fdatasync(sf.f, sf.path)
}

func (q *Queue) fdatasync(f *os.File, path string) error {
	start := time.Now()
	var err error
	for {
		err = unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			break
		}
	}
	d := time.Since(start)
	q.fsyncs.Add(1)
	q.lastFsync.Store(int64(d))
	q.fsyncTime.Add(int64(d))
	if d > time.Second {
		q.log.Warn("spool: slow fdatasync", "path", path, "duration", d)
	}
	if err != nil {
		return fmt.Errorf("spool: fdatasync %s: %w", path, err)
	}
	return nil
}

func (q *Queue) closeSegFile(sf *segFile, sync bool) error {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if sf.closed {
		return nil
	}
	sf.closed = true
	var err error
	if sync {
		err = q.fdatasync(sf.f, sf.path)
	}
	if cerr := sf.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("spool: close %s: %w", sf.path, cerr)
	}
	return err
}

// syncTo fsyncs sf and records that writes up to gen are durable.
func (q *Queue) syncTo(sf *segFile, gen uint64) error {
	if err := q.datasync(sf); err != nil {
		return q.setSticky(err)
	}
	if err := q.stickyErr(); err != nil {
		return err
	}
	for {
		cur := q.syncedGen.Load()
		if cur >= gen || q.syncedGen.CompareAndSwap(cur, gen) {
			return nil
		}
	}
}

// Sync is a durability barrier: when it returns nil, every record appended
// before the call is on stable storage. After Close it returns the sticky
// error, if any.
func (q *Queue) Sync() error {
	q.wmu.Lock()
	if q.wclosed {
		q.wmu.Unlock()
		return q.stickyErr()
	}
	gen, sf := q.writeGen, q.wsf
	q.wmu.Unlock()
	if err := q.stickyErr(); err != nil {
		return err
	}
	if q.syncedGen.Load() >= gen {
		return nil
	}
	return q.syncTo(sf, gen)
}

// bg runs the interval fsync and the coalesced ack-state writes.
func (q *Queue) bg() {
	defer close(q.bgDone)
	var tick <-chan time.Time
	if q.opts.Fsync.Every > 0 && !q.opts.Fsync.Always {
		t := time.NewTicker(q.opts.Fsync.Every)
		defer t.Stop()
		tick = t.C
	}
	const minAckInterval = 100 * time.Millisecond
	var ackTimer *time.Timer
	var ackC <-chan time.Time
	var lastFlush time.Time
	defer func() {
		if ackTimer != nil {
			ackTimer.Stop()
		}
	}()
	for {
		select {
		case <-q.stop:
			return
		case <-tick:
			if err := q.Sync(); err != nil && !errors.Is(err, ErrClosed) {
				q.log.Debug("spool: interval fsync", "err", err)
			}
		case <-q.ackKick:
			if ackC != nil {
				continue // a flush is already scheduled
			}
			if wait := time.Until(lastFlush.Add(minAckInterval)); wait > 0 {
				ackTimer = time.NewTimer(wait)
				ackC = ackTimer.C
				continue
			}
			q.flushAck()
			lastFlush = time.Now()
		case <-ackC:
			ackC, ackTimer = nil, nil
			q.flushAck()
			lastFlush = time.Now()
		}
	}
}

// Bounds returns the lowest unacknowledged seq and the seq the next Append
// gets; records in [firstUnacked, next) not yet acknowledged are pending.
func (q *Queue) Bounds() (firstUnacked, next uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.floor, q.next
}

// Stats returns a snapshot of the queue's state and counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	s := Stats{
		Bytes:    q.usedLocked(),
		Segments: len(q.segs),
	}
	s.Records = q.next - q.floor
	for _, r := range q.ranges {
		s.Records -= r.hi - r.lo + 1
	}
	if q.floor < q.next {
		s.OldestAppended = q.oldestLocked()
	}
	q.mu.Unlock()
	s.Appended = q.appended.Load()
	s.Acked = q.acked.Load()
	s.Dropped = q.dropped.Load()
	s.TruncatedBytes = q.truncated.Load()
	s.QuarantinedBytes = q.quarantined.Load()
	s.LostRecords = q.lost.Load()
	s.Fsyncs = q.fsyncs.Load()
	s.LastFsync = time.Duration(q.lastFsync.Load())
	s.FsyncTime = time.Duration(q.fsyncTime.Load())
	s.WriteErr = q.stickyErr()
	return s
}

// oldestLocked estimates the append time of the record at the floor from
// the sparse index (exact to within indexEvery bytes of records).
func (q *Queue) oldestLocked() time.Time {
	for _, s := range q.segs {
		if s.end <= q.floor || len(s.index) == 0 {
			continue
		}
		best := s.index[0]
		for _, e := range s.index {
			if e.seq > q.floor {
				break
			}
			best = e
		}
		return time.Unix(0, best.ts)
	}
	return time.Time{}
}

// CloseAppend makes Append return ErrClosed and wakes blocked appenders and
// readers; readers drain what is left and then get ErrClosed.
func (q *Queue) CloseAppend() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closedAppend {
		return
	}
	q.closedAppend = true
	broadcast(&q.spaceCh)
	broadcast(&q.dataCh)
}

// Close refuses further appends, fsyncs the active segment, persists the
// ack state, deletes fully acknowledged segments and releases the lock. It
// is idempotent; it returns the sticky write error too, if any.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() { q.closeErr = q.close() })
	return q.closeErr
}

func (q *Queue) close() error {
	q.CloseAppend()
	var errs []error
	q.wmu.Lock()
	q.wclosed = true
	if q.stickyErr() == nil {
		if err := q.closeSegFile(q.wsf, true); err != nil {
			errs = append(errs, q.setSticky(err))
		}
	} else {
		q.closeSegFile(q.wsf, false)
	}
	q.wmu.Unlock()
	close(q.stop)
	<-q.bgDone
	if err := q.flushAck(); err != nil {
		errs = append(errs, err)
	}
	q.mu.Lock()
	q.closed = true
	broadcast(&q.dataCh)
	q.mu.Unlock()
	q.rmu.Lock()
	q.rclosed = true
	for p, r := range q.readers {
		r.f.Close()
		delete(q.readers, p)
	}
	q.rmu.Unlock()
	if err := q.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("spool: release lock: %w", err))
	}
	if err := q.stickyErr(); err != nil && len(errs) == 0 {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
