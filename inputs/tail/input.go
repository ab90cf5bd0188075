// Package tail is the file input of Sluice: it follows the files that
// glob patterns match, through rotation by rename and by copytruncate and
// across restarts, and emits one event per line (or per multiline
// record).
//
// Files are watched with inotify (fsnotify, one watch per directory) and
// also polled, so a missed notification, or a filesystem without inotify,
// only delays reading. A file is identified by device, inode and a
// fingerprint of its first bytes (CRC-32C of up to 1 KiB), so a file
// renamed by logrotate is still recognised and a new file that reuses a
// deleted file's inode is not mistaken for it.
//
// Delivery: a file's position is saved only after the Emit that carried
// its lines returned nil, and only at a line (or record) boundary, so
// after a clean stop every line is delivered once; after a crash lines
// emitted since the last save (saves are coalesced, every 250ms) are
// delivered again. A file's first position is saved before any of its
// lines is emitted. See docs/tail-input.md for rotation semantics, what
// copytruncate can lose and the position file format.
//
// Reasons counted in inputs.Metrics.Dropped:
//
//	oversize        a line longer than max_line_bytes, or a record longer than
//	                multiline.max_bytes, was truncated (one per line or record)
//	file_truncated  a file was truncated (copytruncate): lines not yet read may be lost
//	file_error      opening, reading or listing a file or directory failed
//	                (permission denied, a path component not a directory, I/O
//	                error); retried at the next scan
//	emit_error      events the sink refused for a reason other than shutdown;
//	                the batch is retried, so these events are delivered later
//
// Connections counts the files held open.
package tail

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/sluicelog/sluice/inputs"
)

// Input follows the files of one `input "tail"` block. Build it with New.
//
// Run is called once, by the router. Ready may be called from any
// goroutine at any time.
//
// Each event's Raw is the line without its LF (and without a CR before
// it), or a multiline record's lines joined by LF; Message shares Raw's
// bytes (both immutable; invalid UTF-8 is kept as is). Origin is the path
// the file was opened under, Stream the block's stream, Input its name,
// Host this machine's host name; Facility and Severity are -1 (unknown);
// Received and Time are when the read that completed the line returned.
//
// Emit batches: up to 256 events (or about 1 MiB of raw bytes) of one
// file per Emit; a batch is emitted as soon as the file has no further
// complete line, so batching adds no latency. Each file's batches are
// emitted in order from a goroutine of its own while the next batch is
// read; at most 8 batches (all files together) are being built or emitted
// at once, which bounds memory.
type Input struct {
	s       *settings
	name    string
	log     *slog.Logger
	metrics *inputs.Metrics
	reg     *registry // loaded by Run

	started atomic.Bool
	ready   chan struct{}
	scans   atomic.Int64 // scans done, for tests
}

var _ inputs.Readier = (*Input)(nil)

// New validates cfg and returns the input (a *Input). It has no side
// effects: files, watches and the position file are opened by Run.
// Invalid attributes are reported as *conf.FieldError values joined with
// errors.Join.
func New(cfg *Config, env inputs.Env) (inputs.Input, error) {
	if !supported {
		return nil, errors.New("tail: needs a system with device and inode numbers (Unix)")
	}
	s, err := validate(cfg)
	if err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := env.Metrics
	if m == nil {
		m = inputs.NewDiscardMetrics()
	}
	return &Input{s: s, name: env.Name, log: log, metrics: m, reg: newRegistry(env.StateDir), ready: make(chan struct{})}, nil
}

// Ready returns a channel closed once Run has loaded the saved positions
// and opened the files found by the first scan.
func (in *Input) Ready() <-chan struct{} { return in.ready }

// Run follows the files until ctx is done, then stops reading, waits for
// the batches already read to be emitted, saves the positions and returns
// nil. Files never make it fail: errors are logged, counted and retried.
// It returns an error only if the saved positions cannot be read (other
// than a missing file, or a damaged one, which is moved aside and
// reported). Run may be called only once.
func (in *Input) Run(ctx context.Context, sink inputs.Sink) error {
	if !in.started.CompareAndSwap(false, true) {
		return errors.New("tail input: Run called more than once")
	}
	reg := in.reg
	if err := reg.load(); err != nil {
		var ce *corruptError
		if !errors.As(err, &ce) {
			return err
		}
		in.log.Error("saved positions lost; files are read as if never seen", "err", err)
	}
	host, _ := os.Hostname()
	rn := &runState{
		s:       in.s,
		log:     in.log,
		metrics: in.metrics,
		sink:    sink,
		reg:     reg,
		bufs:    newBufPool(2 * in.s.readChunk),
		tokens:  make(chan struct{}, in.s.batchesInUse),
		limiter: logLimiter{every: 10 * time.Second},
		meta:    eventMeta{input: in.name, stream: in.s.stream, host: host},
	}
	m := &manager{
		scans:      &in.scans,
		rn:         rn,
		ctx:        ctx,
		watched:    make(map[string]bool),
		active:     make(map[fileID]*reader),
		byPath:     make(map[string]map[*reader]bool),
		pendingSet: make(map[string]bool),
		exits:      make(chan readerExit),
		first:      true,
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		in.log.Warn("inotify unavailable; polling files every poll_interval and scanning every scan_interval",
			"err", err, "poll_interval", in.s.poll, "scan_interval", in.s.scan)
	} else {
		m.watcher = w
	}

	fctx, fcancel := context.WithCancel(context.Background())
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		rn.saveLoop(fctx)
	}()

	m.scan()
	close(in.ready)
	m.loop()

	if m.watcher != nil {
		m.watcher.Close()
	}
	fcancel()
	<-flushed
	if err := reg.save(); err != nil {
		in.log.Error("saving positions at shutdown failed; lines read since the last save will be read again", "err", err)
	}
	in.log.Info("stopped", "positions", len(reg.all()))
	return nil
}

// corruptError reports a position file that could not be decoded.
type corruptError struct{ err error }

func (e *corruptError) Error() string { return e.err.Error() }
func (e *corruptError) Unwrap() error { return e.err }

// runState is what the manager and every reader of one Run share.
type runState struct {
	s       *settings
	log     *slog.Logger
	metrics *inputs.Metrics
	sink    inputs.Sink
	reg     *registry
	bufs    *bufPool
	meta    eventMeta     // origin filled per file
	tokens  chan struct{} // one per batch being built or emitted
	limiter logLimiter
	// contended is set while files wait for an open-file slot: readers
	// that reached the end of their file then close it.
	contended atomic.Bool

	claimMu sync.Mutex
	claimed map[fileID]bool // files a reader reads besides its own (copytruncate copies)
}

// claim marks id as read by a reader other than its own, so the manager
// does not take its saved position for an orphan.
func (rn *runState) claim(id fileID) {
	rn.claimMu.Lock()
	defer rn.claimMu.Unlock()
	if rn.claimed == nil {
		rn.claimed = make(map[fileID]bool)
	}
	rn.claimed[id] = true
}

func (rn *runState) unclaim(id fileID) {
	rn.claimMu.Lock()
	defer rn.claimMu.Unlock()
	delete(rn.claimed, id)
}

func (rn *runState) isClaimed(id fileID) bool {
	rn.claimMu.Lock()
	defer rn.claimMu.Unlock()
	return rn.claimed[id]
}

// acquire takes a batch token, waiting while all are in use. It returns
// false if ctx ended first.
func (rn *runState) acquire(ctx context.Context) bool {
	select {
	case rn.tokens <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// releaseBatch gives back b's token, if it holds one.
func (rn *runState) releaseBatch(b *batch) {
	if b.token {
		b.token = false
		<-rn.tokens
	}
}

// saveLoop saves the positions every flushEvery until ctx ends.
func (rn *runState) saveLoop(ctx context.Context) {
	t := time.NewTicker(rn.s.flushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := rn.reg.save(); err != nil {
				rn.warn("save", "saving positions failed; retrying", "err", err)
			}
		}
	}
}

// fileError logs (rate-limited per path and operation) and counts a
// failure on a file or directory. A file that vanished is only logged at
// debug level: files come and go.
func (rn *runState) fileError(path, op string, err error) {
	if isNotExist(err) {
		rn.log.Debug("file vanished", "path", path, "op", op, "err", err)
		return
	}
	rn.metrics.Dropped.WithLabelValues("file_error").Inc()
	rn.warn(op+":"+path, "cannot "+op+"; retrying", "path", path, "err", err)
}

// warn logs at Warn level at most once per limiter period for key,
// reporting how many were suppressed since.
func (rn *runState) warn(key, msg string, args ...any) {
	if ok, n := rn.limiter.allow(key, time.Now()); ok {
		if n > 0 {
			args = append(args, "suppressed", n)
		}
		rn.log.Warn(msg, args...)
	}
}

// logLimiter rate-limits repeated log lines by key.
type logLimiter struct {
	every      time.Duration
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

// allow reports whether a line for key may be logged now, and how many
// were suppressed since the last one.
func (l *logLimiter) allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil || len(l.last) > 10000 {
		l.last = make(map[string]time.Time)
		l.suppressed = make(map[string]int)
	}
	if t, ok := l.last[key]; ok && now.Sub(t) < l.every {
		l.suppressed[key]++
		return false, 0
	}
	n := l.suppressed[key]
	l.last[key] = now
	delete(l.suppressed, key)
	return true, n
}

// manager finds files, starts a reader per file, routes notifications to
// readers and handles their ends. It runs on Run's goroutine.
type manager struct {
	scans   *atomic.Int64
	rn      *runState
	ctx     context.Context
	watcher *fsnotify.Watcher // nil: polling only
	watched map[string]bool   // directories watched

	active     map[fileID]*reader
	byPath     map[string]map[*reader]bool // readers by current path, for notifications
	pending    []candidate                 // waiting for an open-file slot, oldest first
	pendingSet map[string]bool             // paths in pending
	opened     []*reader                   // opened, not yet started (see launch)
	exits      chan readerExit
	wg         sync.WaitGroup
	first      bool // the first scan: start_at applies
	scanSoon   bool // a notification asked for a scan
}

// candidate is a file to open.
type candidate struct {
	path   string
	end    bool      // start at its end (start_at = "end", first scan, never seen)
	orphan *position // a saved file found under another name: drain it
}

type readerExit struct {
	rd  *reader
	why exitReason
}

// loop serves notifications, scans and reader ends until ctx is done,
// then waits for every reader to end.
func (m *manager) loop() {
	s := m.rn.s
	scanTick := time.NewTicker(s.scan)
	defer scanTick.Stop()
	soon := time.NewTimer(time.Hour)
	defer soon.Stop()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if m.watcher != nil {
		events, errs = m.watcher.Events, m.watcher.Errors
	}
	for m.ctx.Err() == nil {
		select {
		case <-m.ctx.Done():
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if m.event(ev) && !m.scanSoon {
				m.scanSoon = true
				soon.Reset(20 * time.Millisecond)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				m.rn.log.Debug("inotify queue overflowed; checking every file")
			} else {
				m.rn.warn("inotify", "inotify error; polling continues", "err", err)
			}
			for _, rd := range m.active {
				rd.notify()
			}
			m.scan()
		case <-soon.C:
			m.scanSoon = false
			m.scan()
		case <-scanTick.C:
			m.scan()
		case x := <-m.exits:
			m.exited(x)
		}
	}
	for len(m.active) > 0 {
		m.exited(<-m.exits)
	}
	m.wg.Wait()
}

// event routes one notification: readers of that path are woken. It
// reports whether a scan is worth doing (names appeared, went or changed
// permissions).
func (m *manager) event(ev fsnotify.Event) bool {
	for rd := range m.byPath[ev.Name] {
		rd.notify()
	}
	return ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Chmod)
}

// scan expands the patterns, starts readers for new files, updates the
// watched directories and deals with saved positions whose file no
// pattern matches any more (orphans).
func (m *manager) scan() {
	if m.ctx.Err() != nil {
		return
	}
	s := m.rn.s
	x := expand(s.paths, s.exclude)
	for dir, err := range x.errs {
		m.rn.fileError(dir, "read directory", err)
	}
	if x.truncated {
		m.rn.warn("walk", "patterns match too many directory entries; some were not examined", "limit", maxDirEntries)
	}
	m.watch(x.dirs)

	saved := m.rn.reg.all()
	savedPaths := make(map[string]bool, len(saved))
	for _, p := range saved {
		savedPaths[p.Path] = true
	}
	matched := make(map[fileID]bool, len(x.files))
	for _, p := range x.files {
		fi, err := os.Stat(p)
		if err != nil {
			m.rn.fileError(p, "stat", err)
			continue
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		id, _, ok := statID(fi)
		if !ok || matched[id] {
			continue // a second name (hard or symbolic link) of a matched file
		}
		matched[id] = true
		if rd := m.active[id]; rd != nil {
			m.setPath(rd, p, true)
			continue
		}
		if m.pendingSet[p] {
			continue
		}
		_, known := m.rn.reg.get(id)
		c := candidate{path: p, end: m.first && s.startAtEnd && !known && !savedPaths[p]}
		m.offer(c, id, fi.Size())
	}
	for i := range saved {
		e := saved[i]
		if !matched[e.id()] && m.active[e.id()] == nil && !m.rn.isClaimed(e.id()) {
			m.orphan(&e)
		}
	}
	m.first = false
	m.launch()
	m.rn.contended.Store(len(m.pending) > 0)
	m.scans.Add(1)
}

// offer opens c now if a slot is free (launch starts it), else queues it
// when it has something to read.
func (m *manager) offer(c candidate, id fileID, size int64) {
	if len(m.active) < m.rn.s.maxOpen {
		m.open(c)
		return
	}
	if m.pendingSet[c.path] {
		return
	}
	if e, ok := m.rn.reg.get(id); ok && e.Offset == size {
		return // nothing new; looked at again by the next scan
	}
	m.pending = append(m.pending, c)
	m.pendingSet[c.path] = true
}

// orphan looks for the file of a saved position no pattern matched in its
// last directory (renamed by a rotation, maybe while Sluice was stopped,
// or a copytruncate copy being recovered). If it is there with unread
// bytes it is drained; otherwise the position is forgotten.
func (m *manager) orphan(e *position) {
	dir := filepath.Dir(e.Path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if isNotExist(err) {
			m.rn.reg.forget(e.id())
			return
		}
		m.rn.fileError(dir, "read directory", err)
		return // keep it: the directory may become readable
	}
	for i, de := range entries {
		if i >= maxDirEntries {
			break
		}
		if !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		if id, _, ok := statID(fi); !ok || id != e.id() {
			continue
		}
		p := filepath.Join(dir, de.Name())
		if m.pendingSet[p] {
			return // already waiting for a slot
		}
		if fi.Size() <= e.Offset {
			m.rn.reg.forget(e.id()) // drained (or truncated: nothing of it to recover)
			return
		}
		m.rn.log.Info("reading the rest of a file found under another name", "path", e.Path, "found", p, "offset", e.Offset)
		m.offer(candidate{path: p, orphan: e}, e.id(), fi.Size())
		return
	}
	m.rn.log.Debug("forgetting the position of a file that is gone", "path", e.Path)
	m.rn.reg.forget(e.id())
}

// open opens c and prepares its reader, which launch starts.
func (m *manager) open(c candidate) {
	rn := m.rn
	f, err := os.Open(c.path)
	if err != nil {
		rn.fileError(c.path, "open", err)
		return
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		rn.fileError(c.path, "stat", err)
		return
	}
	id, _, ok := statID(fi)
	if !ok || !fi.Mode().IsRegular() {
		f.Close()
		return
	}
	if rd := m.active[id]; rd != nil {
		f.Close() // replaced by a file already followed since the scan
		m.setPath(rd, c.path, c.orphan == nil)
		return
	}
	var prefix [fpMax]byte
	n, err := readPrefix(f, &prefix)
	if err != nil {
		f.Close()
		rn.fileError(c.path, "read", err)
		return
	}
	cur := fingerprint{Len: n, CRC: crc(0, prefix[:n])}
	size := fi.Size()
	var (
		off     int64
		recover *position
	)
	e, saved := rn.reg.get(id)
	matches := saved && prefixMatches(prefix[:n], e.fp()) && size >= e.Offset
	origin := c.path
	switch {
	case c.orphan != nil:
		if id != c.orphan.id() || !matches {
			f.Close()
			rn.reg.forget(c.orphan.id())
			return
		}
		off = e.Offset
		origin = c.orphan.Path
	case matches:
		off = e.Offset
	case saved:
		rn.metrics.Dropped.WithLabelValues("file_truncated").Inc()
		rn.log.Info("file changed since its position was saved (truncated, or a new file reusing the inode); reading it from the start",
			"path", c.path, "saved_offset", e.Offset, "size", size)
		recover = &e
	case c.end:
		off = lineStartBefore(f, size)
	}
	meta := rn.meta
	meta.origin = origin
	rd := &reader{
		rn:       rn,
		id:       id,
		f:        f,
		wake:     make(chan struct{}, 1),
		path:     c.path,
		attached: c.orphan == nil,
		meta:     meta,
		fp:       cur,
		fr:       newFramer(rn.s, off),
		recover:  recover,
		prefix:   prefix,
	}
	rn.reg.set(position{Path: c.path, Dev: id.Dev, Ino: id.Ino, FPLen: cur.Len, FPCRC: cur.CRC, Offset: off})
	m.active[id] = rd
	m.addPath(rd, c.path)
	m.opened = append(m.opened, rd)
	rn.metrics.Connections.Inc()
	rn.log.Debug("following file", "path", c.path, "offset", off, "size", size)
}

// launch saves the positions of files opened for the first time, then
// starts the readers open prepared.
func (m *manager) launch() {
	if len(m.opened) == 0 {
		return
	}
	if err := m.rn.reg.saveUrgent(); err != nil {
		m.rn.warn("save", "saving the positions of new files failed; a crash before the next save may read them again, or miss them if they are rotated meanwhile", "err", err)
	}
	for _, rd := range m.opened {
		m.wg.Go(func() {
			why := rd.run(m.ctx)
			m.exits <- readerExit{rd: rd, why: why}
		})
	}
	clear(m.opened)
	m.opened = m.opened[:0]
}

// exited handles a reader's end and gives its slot to a waiting file.
func (m *manager) exited(x readerExit) {
	rd := x.rd
	delete(m.active, rd.id)
	path, _ := rd.where()
	m.removePath(rd, path)
	m.rn.metrics.Connections.Dec()
	if x.why == exitDeleted {
		m.rn.reg.forget(rd.id)
	}
	m.rn.log.Debug("closed file", "path", path, "why", x.why.String())
	for m.ctx.Err() == nil && len(m.active) < m.rn.s.maxOpen && len(m.pending) > 0 {
		c := m.pending[0]
		m.pending[0] = candidate{}
		m.pending = m.pending[1:]
		delete(m.pendingSet, c.path)
		m.open(c)
	}
	m.launch()
	m.rn.contended.Store(len(m.pending) > 0)
}

func (m *manager) setPath(rd *reader, path string, attached bool) {
	old, _ := rd.where()
	if old != path {
		m.removePath(rd, old)
		m.addPath(rd, path)
	}
	rd.setPath(path, attached)
}

func (m *manager) addPath(rd *reader, path string) {
	set := m.byPath[path]
	if set == nil {
		set = make(map[*reader]bool)
		m.byPath[path] = set
	}
	set[rd] = true
}

func (m *manager) removePath(rd *reader, path string) {
	if set := m.byPath[path]; set != nil {
		delete(set, rd)
		if len(set) == 0 {
			delete(m.byPath, path)
		}
	}
}

// watch makes the watched directories those of dirs.
func (m *manager) watch(dirs map[string]bool) {
	if m.watcher == nil {
		return
	}
	for d := range dirs {
		if m.watched[d] {
			continue
		}
		if err := m.watcher.Add(d); err != nil {
			m.rn.warn("watch:"+d, "cannot watch directory; its files are polled", "dir", d, "err", err)
			continue
		}
		m.watched[d] = true
	}
	for d := range m.watched {
		if !dirs[d] {
			_ = m.watcher.Remove(d) // may be gone already
			delete(m.watched, d)
		}
	}
}

// lineStartBefore returns the offset just after the last LF in the 64 KiB
// before size: where reading "from the end" starts, so the first event is
// a whole line. A file without LF there starts at size (or at 0 if it is
// shorter than that window: it is one partial line).
func lineStartBefore(f *os.File, size int64) int64 {
	if size == 0 {
		return 0
	}
	from := max(0, size-64<<10)
	buf := make([]byte, size-from)
	n, err := f.ReadAt(buf, from)
	if err != nil && err != io.EOF {
		return size
	}
	if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
		return from + int64(i) + 1
	}
	if from == 0 {
		return 0
	}
	return size
}
