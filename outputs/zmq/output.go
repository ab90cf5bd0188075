// Package zmq is the ZeroMQ output of Sluice: a libzmq PUSH or PUB socket
// (through github.com/pebbe/zmq4) that binds or connects, optionally with
// CURVE, and sends every event as one message in format raw, rfc5424 or
// json (package outputs/format).
//
// # PUSH
//
// A PUSH message is one frame, the encoded event. libzmq hands each
// message to one peer, round-robin over the peers that have room below
// send_hwm. When none has room (or none is connected), the send waits up
// to send_timeout, then Write fails: the router retries, so events stay in
// the queue. Sluice itself drops nothing the queue hands over: a retry of
// the same batch sends only the events after the last one libzmq accepted,
// so the retry produces no duplicates.
//
// What can still be lost is what libzmq accepted but never delivered —
// ZeroMQ has no acknowledgements, and Write returns once libzmq has taken
// the message (the worker then acknowledges it in the queue):
//
//   - A peer that dies loses what it had received but not processed: its
//     TCP receive buffer and its libzmq queue (up to its receive HWM), and
//     what was in our kernel send buffer and libzmq's 8 KiB encoder batch
//     for that connection when the connection broke.
//   - A peer that disconnects from a socket that binds takes its libzmq
//     queue (up to send_hwm messages) with it. On a socket that connects,
//     that queue survives and is delivered when libzmq has reconnected.
//   - At shutdown, Close gives libzmq `linger` to deliver its queues;
//     what is left after that (a peer that is down) is lost.
//
// # PUB
//
// A PUB message is two frames, [topic, encoded event], the topic rendered
// from the topic template. PUB never blocks and never makes Write fail for
// want of subscribers: libzmq discards messages no subscriber matches, and
// drops a message for a subscriber whose queue is at send_hwm (a slow
// subscriber loses messages; the others do not wait for it). The socket is
// an XPUB with ZMQ_XPUB_NODROP, sent without blocking: when libzmq
// refuses a message because some matching subscriber is full, the output
// sends it again in lossy mode (it reaches the subscribers with room) and
// counts it in sluice_zmq_pub_dropped_total. The count is of messages that
// at least one subscriber missed; libzmq does not say how many subscribers
// missed each. XPUB is wire-compatible with SUB and XSUB peers.
//
// # Sockets and goroutines
//
// Open (called by the router before the first Write) opens the socket;
// Write runs on the output's worker goroutine; Close comes after the last
// Write. The socket is only ever used by one of them at a time. The ZAP
// handler (CURVE authorized_keys) and the socket monitor (peers gauge,
// handshake failures) run on goroutines of their own with sockets of their
// own, and end in Close.
package zmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	zmq4 "github.com/pebbe/zmq4"

	"github.com/sluicelog/sluice/internal/zmqsock"
	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/outputs/format"
	"github.com/sluicelog/sluice/router/event"
)

// sendTick bounds one blocking PUSH send, so that Write notices ctx.
const sendTick = 100 * time.Millisecond

// maxSubscriptionReads bounds the XPUB subscription messages read per Write.
const maxSubscriptionReads = 1024

// Output is one zmq output block; it implements outputs.Output,
// outputs.Opener and prometheus.Collector. Build it with New.
type Output struct {
	s       *settings
	name    string
	log     *slog.Logger
	m       *metrics
	limiter zmqsock.LogLimiter
	peers   atomic.Int64

	sock      *zmqsock.Socket // set by Open
	endpoints atomic.Pointer[[]string]
	closed    atomic.Bool

	// Scratch of the worker goroutine.
	buf    []byte
	topic  []byte
	resume resumeState
	nSent  int // messages and bytes sent by the current Write, added to
	nBytes int // the counters once per Write
}

var (
	_ outputs.Output = (*Output)(nil)
	_ outputs.Opener = (*Output)(nil)
)

// resumeState remembers how far a failed Write got, so that the router's
// retry of the same batch (the same event pointers) sends only the rest.
// Holding the events keeps their addresses from being reused by another
// batch while the state is active.
type resumeState struct {
	evs  []*event.Event
	next int
}

func (r *resumeState) matches(evs []*event.Event) bool {
	return len(r.evs) > 0 && slices.Equal(r.evs, evs)
}

func (r *resumeState) clear() {
	clear(r.evs)
	r.evs, r.next = r.evs[:0], 0
}

// New validates cfg and returns the output (an *Output). It reads the
// CURVE key files named in cfg and has no other side effects: the socket
// is opened by Open. Config errors are *conf.FieldError values joined with
// errors.Join.
func New(cfg *Config, env outputs.Env) (outputs.Output, error) {
	s, err := validate(cfg)
	if err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, w := range s.warnings {
		log.Warn(w)
	}
	return &Output{
		s:       s,
		name:    env.Name,
		log:     log,
		m:       newMetrics(env.Name),
		limiter: zmqsock.LogLimiter{Every: 10 * time.Second},
	}, nil
}

// Open opens the socket, binds and connects. A bind that fails (address in
// use) is an error; connections are made, and remade, in the background.
func (o *Output) Open(context.Context) error {
	if o.sock != nil {
		return errors.New("zmq output: Open called twice")
	}
	typ, opts := zmq4.PUSH, zmqsock.Options{
		Bind:        o.s.bind,
		Connect:     o.s.connect,
		Curve:       o.s.curve,
		SendHWM:     o.s.sendHWM,
		Linger:      o.s.linger,
		Heartbeat:   o.s.heartbeat,
		SendTimeout: min(o.s.sendTimeout, sendTick),
		Events:      o.peerEvent,
		Log:         o.log,
	}
	if o.s.pub {
		typ = zmq4.XPUB
		opts.SendTimeout = 0
		opts.Setup = func(z *zmq4.Socket) error {
			if err := z.SetXpubNodrop(true); err != nil {
				return fmt.Errorf("zmq: setting ZMQ_XPUB_NODROP: %w", err)
			}
			return nil
		}
	}
	opts.Type = typ
	sock, err := zmqsock.Open(opts)
	if err != nil {
		return fmt.Errorf("zmq output: %w", err)
	}
	o.sock = sock
	eps := sock.Endpoints()
	o.endpoints.Store(&eps)
	sockName := "push"
	if o.s.pub {
		sockName = "pub"
	}
	o.log.Info("zmq socket open", "socket", sockName, "bind", o.s.bind, "connect", o.s.connect,
		"endpoints", eps, "format", o.s.format.String(), "curve", o.s.curve != nil)
	return nil
}

// Endpoints returns the endpoints bound (a "*" or 0 port replaced by the
// port chosen) and connected, or nil before Open. Safe from any goroutine.
func (o *Output) Endpoints() []string {
	if p := o.endpoints.Load(); p != nil {
		return append([]string(nil), (*p)...)
	}
	return nil
}

// peerEvent runs on the monitor's goroutine.
func (o *Output) peerEvent(e zmqsock.PeerEvent) {
	switch e.Kind {
	case zmqsock.PeerConnected:
		o.peers.Add(1)
		o.m.peers.Inc()
	case zmqsock.PeerDisconnected:
		for {
			n := o.peers.Load()
			if n <= 0 {
				break
			}
			if o.peers.CompareAndSwap(n, n-1) {
				o.m.peers.Dec()
				break
			}
		}
	case zmqsock.PeerRejected:
		o.m.handshake.Inc()
		if ok, n := o.limiter.Allow("handshake "+e.Endpoint, time.Now()); ok {
			o.log.Warn("zmq peer failed the handshake; it receives nothing", "endpoint", e.Endpoint, "reason", e.Reason, "suppressed", n)
		}
	}
}

// Write sends evs in order, one message each. It returns nil once libzmq
// accepted every event; a retryable error if a PUSH send timed out or
// libzmq failed (a retry with the same events resumes after the last one
// accepted); ctx.Err() when ctx ends. See the package documentation.
func (o *Output) Write(ctx context.Context, evs []*event.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.closed.Load() {
		return errors.New("zmq output: Write after Close")
	}
	if o.sock == nil {
		return errors.New("zmq output: Write before Open")
	}
	if len(evs) == 0 {
		return nil
	}
	start := 0
	if o.resume.matches(evs) {
		start = o.resume.next
	} else {
		o.resume.clear()
		o.resume.evs = append(o.resume.evs, evs...)
	}
	if o.s.pub {
		o.readSubscriptions()
	}
	defer o.flushCounts()
	for i := start; i < len(evs); i++ {
		var err error
		if o.s.pub {
			err = o.sendPub(evs[i])
		} else {
			err = o.sendPush(ctx, evs[i])
		}
		if err != nil {
			o.resume.next = i
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w (%d of the batch's %d events sent; the router retries the rest)", err, i, len(evs))
		}
	}
	o.resume.clear()
	return nil
}

// flushCounts adds what the Write sent to the counters.
func (o *Output) flushCounts() {
	if o.nSent > 0 {
		o.m.sent.Add(float64(o.nSent))
		o.m.bytes.Add(float64(o.nBytes))
		o.nSent, o.nBytes = 0, 0
	}
}

// payload encodes ev into o.buf, or returns ev.Raw itself for format raw.
func (o *Output) payload(ev *event.Event) []byte {
	if o.s.format == format.Raw {
		return ev.Raw
	}
	o.buf = o.s.format.Append(o.buf[:0], ev)
	return o.buf
}

// sendPush sends one event, waiting up to send_timeout for a peer with
// room (in sendTick steps, checking ctx between them).
func (o *Output) sendPush(ctx context.Context, ev *event.Event) error {
	p := o.payload(ev)
	z := o.sock.Z
	var deadline time.Time
	for {
		_, err := z.SendBytes(p, 0)
		if err == nil {
			o.nSent++
			o.nBytes += len(p)
			return nil
		}
		if !zmqsock.IsAgain(err) {
			o.m.errors.Inc()
			return fmt.Errorf("zmq output: send: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		now := time.Now()
		if deadline.IsZero() {
			// One tick has passed already.
			deadline = now.Add(o.s.sendTimeout - min(o.s.sendTimeout, sendTick))
		}
		if !now.Before(deadline) {
			o.m.timeouts.Inc()
			return fmt.Errorf("zmq output: no PUSH peer took a message within send_timeout (%s; %d peers connected, each at send_hwm or not ready)",
				o.s.sendTimeout, o.peers.Load())
		}
	}
}

// sendPub sends one event as [topic, payload] without blocking; see the
// package documentation for how drops are detected.
func (o *Output) sendPub(ev *event.Event) error {
	o.topic = o.s.topic.Append(o.topic[:0], ev)
	p := o.payload(ev)
	z := o.sock.Z
	_, err := z.SendBytes(o.topic, zmq4.DONTWAIT|zmq4.SNDMORE)
	lossy := false
	if zmqsock.IsAgain(err) {
		// Some matching subscriber is at send_hwm: send to the others.
		lossy = true
		if err = z.SetXpubNodrop(false); err == nil {
			_, err = z.SendBytes(o.topic, zmq4.DONTWAIT|zmq4.SNDMORE)
		}
	}
	if err == nil {
		_, err = z.SendBytes(p, zmq4.DONTWAIT)
		if zmqsock.IsAgain(err) && !lossy {
			lossy = true
			if err = z.SetXpubNodrop(false); err == nil {
				_, err = z.SendBytes(p, zmq4.DONTWAIT)
			}
		}
	}
	if lossy {
		if rerr := z.SetXpubNodrop(true); err == nil {
			err = rerr
		}
		o.m.pubDropped.Inc()
	}
	if err != nil {
		o.m.errors.Inc()
		return fmt.Errorf("zmq output: send: %w", err)
	}
	o.nSent++
	o.nBytes += len(o.topic) + len(p)
	return nil
}

// readSubscriptions consumes the (un)subscription messages an XPUB
// queues for the application, so that they do not accumulate, and logs
// them at debug level.
func (o *Output) readSubscriptions() {
	z := o.sock.Z
	for range maxSubscriptionReads {
		b, err := z.RecvBytes(zmq4.DONTWAIT)
		if err != nil {
			return
		}
		if len(b) > 0 && o.log.Enabled(context.Background(), slog.LevelDebug) {
			what := "unsubscribed"
			if b[0] == 1 {
				what = "subscribed"
			}
			o.log.Debug("pub subscription", "change", what, "topic", string(b[1:]))
		}
	}
}

// Close closes the socket, giving libzmq up to `linger` to deliver what it
// still queues, and stops the monitor and ZAP goroutines. It is called once,
// after the last Write; later calls return nil.
func (o *Output) Close() error {
	if o.closed.Swap(true) {
		return nil
	}
	o.resume.clear()
	if o.sock == nil {
		return nil
	}
	err := o.sock.Close()
	o.m.peers.Sub(float64(o.peers.Swap(0)))
	return err
}
