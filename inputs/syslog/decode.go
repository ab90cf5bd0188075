package syslog

import (
	"context"
	"errors"
	"time"
	"unsafe"

	gosyslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/auto"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/router/event"
)

// decoder turns frames into events. It owns a go-syslog machine, which is
// not safe for concurrent use: one decoder per goroutine.
type decoder struct {
	m      gosyslog.Machine // nil for format "raw"
	fast   *fastState       // non-nil: try fast5424 before m (formats auto and rfc5424)
	loc    *time.Location   // zone of RFC 3164 stamps
	input  string
	stream string
}

// newDecoder builds the parser for format ("auto", "rfc5424", "rfc3164" or
// "raw").
//
// RFC 3164 stamps are parsed without WithLocaleTimezone: the machine then
// parses each stamp once (with the option it parses it twice), and
// fixStamp rebuilds the time in loc anyway once it has inferred the year,
// which gives the same instant.
func newDecoder(format string, loc *time.Location, input, stream string) *decoder {
	d := &decoder{loc: loc, input: input, stream: stream}
	if format == "auto" || format == "rfc5424" {
		d.fast = newFastState()
	}
	opts3164 := []gosyslog.MachineOption{
		rfc3164.WithRFC3339(),
		rfc3164.WithLenientDay(),
		rfc3164.WithSecondFractions(),
		rfc3164.WithEmbeddedNewlines(),
	}
	switch format {
	case "rfc5424":
		d.m = rfc5424.NewMachine(rfc5424.WithBestEffort())
	case "rfc3164":
		d.m = rfc3164.NewMachine(append(opts3164, rfc3164.WithBestEffort())...)
	case "raw":
	default:
		m := auto.NewMachine(auto.WithRFC3164Options(opts3164...))
		m.WithBestEffort()
		d.m = m
	}
	return d
}

// decode fills ev from frame (everything but Raw, Origin and the Host
// fallback). It reports whether the frame failed to parse, fully or in
// part. frame must be the event's own, immutable Raw: when the message is
// the whole frame, Message shares its bytes instead of copying them.
func (d *decoder) decode(ev *event.Event, frame []byte, recv time.Time) (failed bool) {
	ev.Received = recv
	ev.Time = recv
	ev.Input = d.input
	ev.Stream = d.stream
	ev.Facility, ev.Severity = -1, -1
	if d.m == nil {
		ev.Message = bytesString(frame)
		return false
	}
	if d.fast != nil && fast5424(ev, frame, d.fast) {
		return false
	}
	msg, err := d.m.Parse(frame)
	var base *gosyslog.Base
	switch v := msg.(type) {
	case *rfc5424.SyslogMessage:
		base = &v.Base
		// A partial (best-effort) parse may stop inside the SD: keep it
		// only when the whole message parsed.
		if err == nil && v.StructuredData != nil && len(*v.StructuredData) > 0 {
			ev.SD = event.SDFromMap(*v.StructuredData)
		}
	case *rfc3164.SyslogMessage:
		base = &v.Base
	}
	if base != nil && err != nil {
		// go-syslog v4.5.0's best-effort RFC 3164 machine returns a
		// partial message for an out-of-range PRI, with the PRI cut to
		// its first digits ("<999>" → 99, "<192>" → 19). A partial parse
		// is only worth keeping when the PRI is valid.
		if _, ok := parsePRI(frame); !ok {
			base = nil
		}
	}
	if base == nil {
		// Neither RFC 5424 nor RFC 3164: keep the whole frame.
		ev.Message = bytesString(frame)
		if pri, ok := parsePRI(frame); ok {
			ev.Facility, ev.Severity = event.Facility(pri/8), event.Severity(pri%8)
		}
		return true
	}
	if base.Facility != nil && base.Severity != nil {
		ev.Facility, ev.Severity = event.Facility(*base.Facility), event.Severity(*base.Severity)
	}
	if base.Timestamp != nil {
		ev.Time = fixStamp(*base.Timestamp, recv, d.loc)
	}
	if base.Hostname != nil {
		ev.Host = *base.Hostname
	}
	if base.Appname != nil {
		ev.App = *base.Appname
	}
	if base.ProcID != nil {
		ev.ProcID = *base.ProcID
	}
	if base.MsgID != nil {
		ev.MsgID = *base.MsgID
	}
	if base.Message != nil {
		ev.Message = *base.Message
	}
	if err != nil {
		// Best effort: the header parsed in part (at least the PRI).
		// Keep what parsed and, when no MSG was recovered, the whole
		// frame as the message.
		if ev.Message == "" {
			ev.Message = bytesString(frame)
		}
		return true
	}
	return false
}

// parsePRI reads a leading "<PRI>" (0-191).
func parsePRI(b []byte) (int, bool) {
	if len(b) < 3 || b[0] != '<' {
		return 0, false
	}
	v := 0
	for i := 1; i < len(b) && i <= 4; i++ {
		c := b[i]
		if c == '>' {
			if i == 1 || v > 191 {
				return 0, false
			}
			return v, true
		}
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return 0, false
}

// fixStamp returns t, a parsed syslog timestamp. RFC 3164 stamps come back
// with year 0 and as UTC wall-clock fields: fixStamp places them in loc and
// infers the year from recv: the latest year that does not put the stamp
// more than a month after recv. So "Dec 31 23:59:59" received on 1 January
// belongs to the previous year, "Jan  1 00:00:01" received a few seconds
// before New Year (a sender clock slightly ahead) to the next one, and a
// stamp 40 days ahead of recv to last year. A stamp of 29 February falls in
// the latest leap year allowed.
func fixStamp(t, recv time.Time, loc *time.Location) time.Time {
	if t.Year() != 0 {
		return t
	}
	const ahead = 31 * 24 * time.Hour
	limit := recv.Add(ahead)
	y := recv.In(loc).Year() + 1
	var c time.Time
	for range 9 { // ≥ 8 years back reaches a leap year for 29 February
		c = time.Date(y, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc)
		if c.Day() == t.Day() && !c.After(limit) {
			return c
		}
		y--
	}
	return c
}

// Allocation sizes of batch.
const (
	eventChunk = 64       // events per allocated []event.Event
	rawChunk   = 16 << 10 // bytes per allocated Raw buffer
)

// batch accumulates the events of one Emit.
//
// Events and their Raw bytes are carved out of chunks (eventChunk events,
// rawChunk bytes) that are filled front to back and never written again
// once a slot is handed out: a chunk may hold events of consecutive
// batches, which keeps the allocations per event low without copying and
// without wasted slack. Nothing handed to Emit is ever modified. The
// []*event.Event passed to Emit is a fresh slice each time.
type batch struct {
	evs    []*event.Event
	slab   []event.Event // current event chunk: len used, cap allocated
	raw    []byte        // current Raw chunk
	rawLen int           // Raw bytes in evs
	fails  int           // parse failures in evs
	last   int           // size of the previous batch, to size evs
}

func (b *batch) len() int { return len(b.evs) }

// add copies frame into the batch's memory and decodes it into a new
// event. origin is the peer "ip:port"; peerHost, the peer IP, is the Host
// when the message has none. frame is not retained.
func (b *batch) add(d *decoder, frame []byte, recv time.Time, origin, peerHost string) {
	if len(b.slab) == cap(b.slab) {
		b.slab = make([]event.Event, 0, eventChunk)
	}
	b.slab = b.slab[:len(b.slab)+1]
	ev := &b.slab[len(b.slab)-1]

	var raw []byte
	switch n := len(frame); {
	case n > rawChunk/4:
		raw = make([]byte, n)
		copy(raw, frame)
	default:
		if cap(b.raw)-len(b.raw) < n {
			b.raw = make([]byte, 0, rawChunk)
		}
		off := len(b.raw)
		b.raw = append(b.raw, frame...)
		raw = b.raw[off:len(b.raw):len(b.raw)]
	}
	ev.Raw = raw
	if d.decode(ev, raw, recv) {
		b.fails++
	}
	ev.Origin = origin
	if ev.Host == "" {
		ev.Host = peerHost
	}
	if b.evs == nil {
		b.evs = make([]*event.Event, 0, min(max(b.last, 16), 256))
	}
	b.evs = append(b.evs, ev)
	b.rawLen += len(raw)
}

// full reports whether the batch should be emitted now.
func (b *batch) full(s *settings) bool {
	return len(b.evs) >= s.maxBatch || b.rawLen >= s.maxBatchRaw
}

// take returns the batch's events, parse failures and raw bytes, and
// resets it.
func (b *batch) take() taken {
	t := taken{evs: b.evs, fails: b.fails, nbytes: b.rawLen}
	b.last = len(b.evs)
	b.evs, b.fails, b.rawLen = nil, 0, 0
	return t
}

// flush emits the batch (if not empty) and updates the metrics. An error
// from the sink is returned as is; the events are then counted as dropped
// ("shutdown" when ctx is done or the sink is closed, else "emit_error").
func (b *batch) flush(ctx context.Context, sink inputs.Sink, m *inputs.Metrics) error {
	if len(b.evs) == 0 {
		return nil
	}
	return emit(ctx, sink, m, b.take())
}

// taken is a batch handed over by batch.take.
type taken struct {
	evs           []*event.Event
	fails, nbytes int
}

func emit(ctx context.Context, sink inputs.Sink, m *inputs.Metrics, t taken) error {
	if t.fails > 0 {
		m.ParseFailures.Add(float64(t.fails))
	}
	if err := sink.Emit(ctx, t.evs); err != nil {
		countDropped(ctx, m, err, len(t.evs))
		return err
	}
	m.Events.Add(float64(len(t.evs)))
	m.Bytes.Add(float64(t.nbytes))
	return nil
}

func countDropped(ctx context.Context, m *inputs.Metrics, err error, n int) {
	reason := "emit_error"
	if ctx.Err() != nil || errors.Is(err, inputs.ErrClosed) {
		reason = "shutdown"
	}
	m.Dropped.WithLabelValues(reason).Add(float64(n))
}

// emitPipe emits a stream connection's batches from a goroutine of its own,
// so the connection's next frames are read and parsed while the previous
// batch is emitted (on a disk queue, encoded and written). At most one
// batch waits between them, so backpressure still reaches the reader a
// batch later. The connection's goroutine calls send and, once, close;
// nothing else touches a pipe.
type emitPipe struct {
	ctx    context.Context
	ch     chan taken
	failed chan struct{} // closed once an Emit failed; err is set before
	done   chan struct{} // closed when the goroutine has ended
	err    error
}

// newEmitPipe starts the pipe's goroutine; onFail runs (on that goroutine)
// when an Emit fails, to unblock a reader waiting for its peer.
func newEmitPipe(ctx context.Context, sink inputs.Sink, m *inputs.Metrics, onFail func()) *emitPipe {
	p := &emitPipe{ctx: ctx, ch: make(chan taken, 1), failed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for t := range p.ch {
			if p.err != nil {
				countDropped(ctx, m, p.err, len(t.evs))
				continue
			}
			if err := emit(ctx, sink, m, t); err != nil {
				p.err = err
				close(p.failed)
				onFail()
			}
		}
	}()
	return p
}

// send hands b's events (if any) to the pipe. It returns the error of an
// Emit that failed (this batch is then counted as dropped and not sent);
// the caller should close the pipe and stop reading.
func (p *emitPipe) send(b *batch, m *inputs.Metrics) error {
	if len(b.evs) == 0 {
		return nil
	}
	t := b.take()
	select {
	case p.ch <- t:
		return nil
	case <-p.failed:
		countDropped(p.ctx, m, p.err, len(t.evs))
		return p.err
	}
}

// close waits until every batch sent has been emitted (or counted as
// dropped) and returns the first Emit error.
func (p *emitPipe) close() error {
	close(p.ch)
	<-p.done
	return p.err
}

// bytesString returns b as a string without copying. b must never change
// afterwards: it is only used on an event's Raw, which is immutable.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
