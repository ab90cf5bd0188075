package tail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sluicelog/sluice/inputs"
)

// exitReason tells the manager why a reader ended.
type exitReason int

const (
	exitStop     exitReason = iota // ctx done or the sink refused: keep the position
	exitYield                      // caught up while other files wait for a slot: keep the position
	exitDetached                   // renamed away (or an orphan) and drained: keep the position; the next scan decides
	exitDeleted                    // deleted and drained: forget the position
	exitError                      // read error: keep the position, retried at the next scan
)

func (r exitReason) String() string {
	return [...]string{"stop", "yield", "detached", "deleted", "error"}[r]
}

// reader follows one open file: it reads what is appended, frames lines
// into batches, hands them to its emitter and watches for rotation and
// truncation. It runs on a goroutine of its own, started by the manager.
//
// A reader is attached while a path matching the input's patterns names
// its file; otherwise (renamed away, deleted, or an orphan being drained)
// it is detached, and it ends once it read everything and no byte was
// appended for rotate_wait.
type reader struct {
	rn   *runState
	id   fileID
	f    *os.File
	wake chan struct{} // capacity 1: the manager saw a change of this file

	mu       sync.Mutex
	path     string // the name it was opened under, or last found under
	attached bool   // path is a match of the input's patterns

	// Owned by the reader goroutine.
	meta    eventMeta
	fp      fingerprint
	fr      *framer
	alloc   eventAlloc
	recover *position // a saved position that no longer matched: look for a copytruncate copy first
	prefix  [fpMax]byte
}

// setPath records that the file was found under path (attached: a
// pattern match).
func (rd *reader) setPath(path string, attached bool) {
	rd.mu.Lock()
	rd.path, rd.attached = path, attached
	rd.mu.Unlock()
}

func (rd *reader) where() (string, bool) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.path, rd.attached
}

// notify wakes the reader if it waits for data. It never blocks.
func (rd *reader) notify() {
	select {
	case rd.wake <- struct{}{}:
	default:
	}
}

// run follows the file until ctx ends or the file is done, then closes it.
// Everything read and complete is handed to the emitter, and run returns
// only once the emitter has finished (positions saved for every batch
// whose Emit returned nil).
func (rd *reader) run(ctx context.Context) exitReason {
	em := newEmitter(ctx, rd.rn)
	defer func() {
		em.close()
		rd.fr.reset(rd.rn.bufs, 0)
		rd.f.Close()
	}()
	if rd.recover != nil {
		rd.recoverCopy(ctx, em, *rd.recover)
		rd.recover = nil
	}
	lastData := time.Now()
	var detachedAt time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		got, err := rd.readAvailable(ctx, em)
		if got {
			lastData = time.Now()
		}
		if ctx.Err() != nil || em.failed() {
			return exitStop
		}
		if err != nil {
			path, _ := rd.where()
			rd.rn.fileError(path, "read", err)
			return exitError
		}
		fi, err := rd.f.Stat()
		if err != nil {
			path, _ := rd.where()
			rd.rn.fileError(path, "stat", err)
			return exitError
		}
		if fi.Size() < rd.fr.readOff() {
			rd.truncated(ctx, em, fmt.Sprintf("size %d < offset %d", fi.Size(), rd.fr.readOff()))
			continue
		}
		if ok, err := rd.verify(); err != nil {
			path, _ := rd.where()
			rd.rn.fileError(path, "read", err)
			return exitError
		} else if !ok {
			rd.truncated(ctx, em, "its first bytes changed")
			continue
		}
		if fi.Size() > rd.fr.readOff() && got {
			continue // appended while we framed (a size we cannot read up to waits for the next poll)
		}

		// At the end of the file, with everything complete handed over.
		_, nlink, _ := statID(fi)
		deleted := nlink == 0
		detached := deleted || !rd.isMine()
		now := time.Now()
		switch {
		case !detached:
			detachedAt = time.Time{}
		case detachedAt.IsZero():
			detachedAt = now
			path, _ := rd.where()
			rd.rn.log.Info("file rotated or deleted; reading it until it has been idle for rotate_wait",
				"path", path, "deleted", deleted, "rotate_wait", rd.rn.s.rotateWait)
		}
		idle := now.Sub(lastData)
		wait := rd.rn.s.poll
		if ml := rd.rn.s.multiline; ml != nil && rd.fr.pendingRecord() {
			if idle >= ml.timeout {
				rd.flush(ctx, em, false)
				continue
			}
			wait = min(wait, ml.timeout-idle)
		}
		if detached {
			quiet := now.Sub(detachedAt)
			if idle < quiet {
				quiet = idle
			}
			if quiet >= rd.rn.s.rotateWait {
				rd.flush(ctx, em, true)
				if deleted {
					return exitDeleted
				}
				return exitDetached
			}
			wait = min(wait, rd.rn.s.rotateWait-quiet)
		} else if rd.rn.contended.Load() && !rd.fr.pendingRecord() {
			return exitYield
		}
		rd.fr.release(rd.rn.bufs)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return exitStop
		case <-em.failedCh:
			return exitStop
		case <-rd.wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// isMine reports whether the reader's path (if it is attached) names its
// file.
func (rd *reader) isMine() bool {
	path, attached := rd.where()
	if !attached {
		return false
	}
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	id, _, ok := statID(fi)
	return ok && id == rd.id
}

// readAvailable reads and frames until the end of the file, handing full
// batches to em; got reports whether any byte was read. It returns early
// when ctx ends or the emitter failed, and after a truncation (handled).
func (rd *reader) readAvailable(ctx context.Context, em *emitter) (got bool, err error) {
	s := rd.rn.s
	for {
		// Waiting for a token (other files' batches in flight) must not
		// pin a read buffer: hand it back first.
		rd.fr.release(rd.rn.bufs)
		if !rd.rn.acquire(ctx) {
			return got, nil
		}
		b := rd.newBatch(true)
		recv := time.Now()
		eof := false
		for {
			rd.fr.frame(b, s, &rd.alloc, &rd.meta, recv, false)
			if eof || b.full(s) || ctx.Err() != nil {
				break
			}
			buf := rd.fr.space(rd.rn.bufs, s.readChunk)
			off := rd.fr.readOff()
			n, rerr := rd.f.ReadAt(buf, off)
			if n > 0 {
				// Bytes read after a truncation are not the file we were
				// reading: check its beginning is still what we know.
				ok, verr := rd.verify()
				switch {
				case verr != nil:
					rerr = verr
				case !ok:
					rd.send(em, b)
					rd.truncated(ctx, em, "its first bytes changed")
					return true, nil
				default:
					got = true
					rd.fp.extend(buf[:n], off)
					rd.fr.fill(n)
					recv = time.Now()
				}
			}
			switch {
			case rerr == io.EOF:
				eof = true // frame what was read, then stop
			case rerr != nil:
				rd.send(em, b)
				return got, rerr
			}
		}
		full := b.full(s)
		rd.send(em, b)
		if (eof && !full) || ctx.Err() != nil || em.failed() {
			return got, nil
		}
	}
}

// newBatch returns an empty batch that will save this file's position.
func (rd *reader) newBatch(token bool) *batch {
	path, _ := rd.where()
	return &batch{id: rd.id, path: path, token: token}
}

// send hands b to the emitter with the position to save after it.
func (rd *reader) send(em *emitter, b *batch) {
	b.fp = rd.fp
	b.off = rd.fr.safe()
	b.commit = true
	em.send(b)
}

// flush emits the pending multiline record, and with final the partial
// last line too (the file is closed for good).
func (rd *reader) flush(ctx context.Context, em *emitter, final bool) {
	if !rd.rn.acquire(ctx) {
		return
	}
	b := rd.newBatch(true)
	if final {
		rd.fr.finish(b, rd.rn.s, &rd.alloc, &rd.meta, time.Now())
	} else {
		rd.fr.flushRecord(b, &rd.alloc, &rd.meta, time.Now())
	}
	rd.send(em, b)
}

// verify reports whether the file still begins with the bytes the
// fingerprint covers.
func (rd *reader) verify() (bool, error) {
	if rd.fp.Len == 0 {
		return true, nil
	}
	n, err := rd.f.ReadAt(rd.prefix[:rd.fp.Len], 0)
	if err != nil && err != io.EOF {
		return false, err
	}
	return n == rd.fp.Len && crc(0, rd.prefix[:n]) == rd.fp.CRC, nil
}

// truncated handles a truncation (copytruncate) noticed at the current
// read offset: what was complete is already handed over; the rest is
// recovered from logrotate's copy if one is found in the same directory,
// and the file is read again from its start.
func (rd *reader) truncated(ctx context.Context, em *emitter, why string) {
	path, _ := rd.where()
	old := position{Path: path, Dev: rd.id.Dev, Ino: rd.id.Ino, Offset: rd.fr.safe()}
	old.setFP(rd.fp)
	rd.rn.metrics.Dropped.WithLabelValues("file_truncated").Inc()
	rd.rn.log.Info("file truncated; reading it again from the start", "path", path, "why", why, "offset", old.Offset)
	// What is pending was read before the truncation: a multiline record
	// (complete lines) and a partial line. With a copy both are read
	// again from it; without, the record is emitted as it is and the
	// partial line, whose end was truncated away, is dropped.
	if !rd.recoverCopy(ctx, em, old) {
		rd.flush(ctx, em, false)
	}
	rd.fr.reset(rd.rn.bufs, 0)
	rd.fp = fingerprint{}
	b := rd.newBatch(false)
	rd.send(em, b)
}

// recoverCopy looks in old's directory for a copy of the file as old
// describes it (a file with other identity whose first bytes match old's
// fingerprint and that holds at least old.Offset bytes: what logrotate's
// copytruncate leaves) and emits its lines from old.Offset to its end. It
// reports whether a copy was found. Copies already followed or saved (they
// match the input's patterns) are left to their own reader.
func (rd *reader) recoverCopy(ctx context.Context, em *emitter, old position) bool {
	if old.FPLen == 0 || old.Offset == 0 {
		return false
	}
	dir := filepath.Dir(old.Path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		rd.rn.fileError(dir, "readdir", err)
		return false
	}
	var (
		best     *os.File
		bestID   fileID
		bestPath string
		bestTime time.Time
		prefix   [fpMax]byte
	)
	defer func() {
		if best != nil {
			best.Close()
		}
	}()
	for i, e := range entries {
		if i >= maxDirEntries {
			break
		}
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		fi, err := e.Info()
		if err != nil || fi.Size() < old.Offset {
			continue
		}
		id, _, ok := statID(fi)
		if !ok || id == rd.id {
			continue
		}
		if _, known := rd.rn.reg.get(id); known {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		n, err := readPrefix(f, &prefix)
		if err != nil || !prefixMatches(prefix[:n], old.fp()) || (best != nil && !fi.ModTime().After(bestTime)) {
			f.Close()
			continue
		}
		if best != nil {
			best.Close()
		}
		best, bestID, bestPath, bestTime = f, id, p, fi.ModTime()
	}
	if best == nil {
		return false
	}
	rd.rn.log.Info("reading the rest of a truncated file from its copy", "path", old.Path, "copy", bestPath, "offset", old.Offset)
	n, _ := readPrefix(best, &prefix)
	c := &reader{
		rn:     rd.rn,
		id:     bestID,
		f:      best,
		path:   bestPath,
		meta:   rd.meta,
		fp:     fingerprint{Len: n, CRC: crc(0, prefix[:n])},
		fr:     newFramer(rd.rn.s, old.Offset),
		alloc:  rd.alloc,
		prefix: prefix,
	}
	rd.rn.claim(bestID)
	rd.rn.reg.set(position{Path: bestPath, Dev: bestID.Dev, Ino: bestID.Ino, FPLen: c.fp.Len, FPCRC: c.fp.CRC, Offset: old.Offset})
	if err := rd.rn.reg.saveUrgent(); err != nil {
		rd.rn.warn("save", "saving the position of a copy failed", "err", err)
	}
	_, err = c.readAvailable(ctx, em)
	if err != nil {
		rd.rn.fileError(bestPath, "read", err)
	}
	done := ctx.Err() == nil && !em.failed() && err == nil
	if done {
		c.flush(ctx, em, true)
	}
	// Interrupted, the copy's position stays saved: the manager (or the
	// next start) drains the rest as an orphan, once unclaimed.
	em.unclaim(bestID, done)
	c.fr.reset(rd.rn.bufs, 0)
	rd.alloc = c.alloc
	return true
}

// emitter emits a reader's batches from a goroutine of its own, so the
// next batch is read and framed while the previous one is emitted, and
// saves each batch's position once its Emit returned nil. At most one
// batch waits between them. If an Emit fails because the input is
// stopping, later batches are not emitted and no position is saved after
// the failure.
type emitter struct {
	ctx      context.Context
	rn       *runState
	ch       chan *batch
	failedCh chan struct{} // closed once an Emit failed for good
	done     chan struct{}
}

func newEmitter(ctx context.Context, rn *runState) *emitter {
	em := &emitter{ctx: ctx, rn: rn, ch: make(chan *batch, 1), failedCh: make(chan struct{}), done: make(chan struct{})}
	go em.loop()
	return em
}

func (em *emitter) failed() bool {
	select {
	case <-em.failedCh:
		return true
	default:
		return false
	}
}

// send queues b. After a failure b is dropped (its token released).
func (em *emitter) send(b *batch) {
	select {
	case em.ch <- b:
	case <-em.failedCh:
		em.rn.releaseBatch(b)
	}
}

// unclaim ends the reading of a claimed file once everything queued
// before is done, forgetting its position if forget is set (and no Emit
// failed).
func (em *emitter) unclaim(id fileID, forget bool) {
	b := &batch{id: id, forget: forget, unclaim: true}
	select {
	case em.ch <- b:
	case <-em.failedCh:
		em.rn.unclaim(id)
	}
}

// close waits until every batch sent has been handled.
func (em *emitter) close() {
	close(em.ch)
	<-em.done
}

func (em *emitter) loop() {
	defer close(em.done)
	rn := em.rn
	for b := range em.ch {
		if b.unclaim {
			if b.forget && !em.failed() {
				rn.reg.forget(b.id)
			}
			rn.unclaim(b.id)
			continue
		}
		if em.failed() {
			rn.releaseBatch(b)
			continue
		}
		if len(b.evs) > 0 {
			if err := em.emit(b); err != nil {
				close(em.failedCh)
				rn.releaseBatch(b)
				continue
			}
		}
		if b.commit {
			rn.reg.set(position{Path: b.path, Dev: b.id.Dev, Ino: b.id.Ino, FPLen: b.fp.Len, FPCRC: b.fp.CRC, Offset: b.off})
		}
		rn.releaseBatch(b)
	}
}

// emit calls Emit until it succeeds or the input is stopping. Other
// errors (an output's queue failed) are counted (reason "emit_error") and
// the batch is tried again with backoff: its lines are not saved as read
// until every output took them, so healthy outputs may receive them more
// than once.
func (em *emitter) emit(b *batch) error {
	rn := em.rn
	backoff := 100 * time.Millisecond
	for {
		err := rn.sink.Emit(em.ctx, b.evs)
		if err == nil {
			rn.metrics.Events.Add(float64(len(b.evs)))
			rn.metrics.Bytes.Add(float64(b.rawLen))
			if b.over > 0 {
				rn.metrics.Dropped.WithLabelValues("oversize").Add(float64(b.over))
			}
			return nil
		}
		if em.ctx.Err() != nil || errors.Is(err, inputs.ErrClosed) {
			return err
		}
		rn.metrics.Dropped.WithLabelValues("emit_error").Add(float64(len(b.evs)))
		rn.warn("emit:"+b.path, "emit failed; retrying the batch", "path", b.path, "events", len(b.evs), "retry_in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-em.ctx.Done():
			t.Stop()
			return em.ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// isNotExist reports whether err means the file or a directory on its path
// is gone (not worth a warning: files come and go).
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
