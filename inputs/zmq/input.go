// Package zmq is the ZeroMQ input of Sluice: a libzmq PULL or SUB socket
// (through github.com/pebbe/zmq4) that binds or connects, optionally with
// CURVE, and turns every message into one event.
//
// # Messages
//
// A message of one frame is the payload. A message of two frames is
// [topic, payload], as PUB senders (Sluice's zmq output among them) send
// it; the topic only served the subscription and is dropped. A message of
// more frames is dropped (reason "multipart"). The payload becomes an
// event according to format:
//
//	raw   Message and Raw are the payload; Facility and Severity -1;
//	      Host and Origin the peer's IP address (libzmq's Peer-Address).
//	json  the payload is decoded with format.DecodeJSON, so an event sent
//	      by a Sluice zmq output with format = "json" arrives with every
//	      field it had (input, stream, origin, received, time, …). Empty
//	      input and stream are set to this input's; an empty Raw to the
//	      message. A payload that is not such an object is kept as a raw
//	      event and counted in ParseFailures.
//
// # Flow control and limits
//
// One goroutine owns the socket. It waits for a message (waking every
// 100ms to notice cancellation), then takes whatever else libzmq has
// already received without blocking, up to 256 messages or 1 MiB, and
// emits them in one Emit. While Emit blocks nothing is read: libzmq's
// queue fills to receive_hwm per peer, then it stops reading the
// connections, and the senders' own high-water marks make them block or
// fail — backpressure reaches the senders.
//
// max_message_bytes is libzmq's ZMQ_MAXMSGSIZE: a peer that announces a
// larger frame is disconnected before the frame is allocated (libzmq peers
// reconnect by themselves; whatever that connection was carrying is lost).
// libzmq does not report why it disconnected a peer, so such messages are
// not counted as dropped. libzmq delivers multipart messages whole, so
// memory per peer is bounded by receive_hwm × max_message_bytes × frames per
// message: expose ZeroMQ ports only to trusted networks or use CURVE with
// authorized_keys.
//
// # Shutdown
//
// When ctx ends, the input unbinds and disconnects (no new message
// arrives), emits what libzmq had already received (for at most 5s, with a
// context that outlives ctx, since the router accepts events while inputs
// stop), closes the socket and returns nil. Messages still in flight on the
// network at that moment are lost: ZeroMQ has no acknowledgements, so the
// sender considers them delivered.
//
// Dropped reasons counted in inputs.Metrics.Dropped:
//
//	multipart   a message of more than two frames
//	handshake   a peer that failed the ZMTP/CURVE handshake (wrong key,
//	            client not authorized, CURVE on one side only)
//	shutdown    events read but refused by the sink while shutting down
//	emit_error  events refused by the sink for another reason
//
// inputs.Metrics.Connections counts the open connections (from libzmq's
// socket monitor).
package zmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"
	"unsafe"

	zmq4 "github.com/pebbe/zmq4"

	"github.com/sluicelog/sluice/inputs"
	syslogin "github.com/sluicelog/sluice/inputs/syslog"
	"github.com/sluicelog/sluice/internal/zmqsock"
	"github.com/sluicelog/sluice/outputs/format"
	"github.com/sluicelog/sluice/router/event"
)

// Batching and shutdown limits.
const (
	maxBatch      = 256     // messages per Emit
	maxBatchBytes = 1 << 20 // payload bytes per Emit (soft)
	eventChunk    = 64      // events per allocated []event.Event
	drainTimeout  = 5 * time.Second
	recvTick      = 100 * time.Millisecond
)

// Input is one zmq input block. Build it with New; the router calls Run
// once. Ready and Endpoints may be called from any goroutine.
type Input struct {
	s       *settings
	name    string
	log     *slog.Logger
	metrics *inputs.Metrics
	limiter zmqsock.LogLimiter
	conns   atomic.Int64 // connections counted in metrics.Connections

	started   atomic.Bool
	ready     chan struct{}
	endpoints []string // written once, before ready is closed
}

var _ inputs.Readier = (*Input)(nil)

// New validates cfg and returns the input (a *Input). It reads the CURVE
// key files named in cfg and has no other side effects: the socket is
// opened by Run. Invalid attributes are *conf.FieldError values joined
// with errors.Join.
func New(cfg *Config, env inputs.Env) (inputs.Input, error) {
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
	m := env.Metrics
	if m == nil {
		m = inputs.NewDiscardMetrics()
	}
	return &Input{
		s:       s,
		name:    env.Name,
		log:     log,
		metrics: m,
		limiter: zmqsock.LogLimiter{Every: 10 * time.Second},
		ready:   make(chan struct{}),
	}, nil
}

// Ready returns a channel closed once Run has bound and connected every
// endpoint (connections to peers complete in the background).
func (in *Input) Ready() <-chan struct{} { return in.ready }

// Endpoints returns the endpoints bound (a "*" or 0 port replaced by the
// port chosen) and connected, or nil until Ready is closed.
func (in *Input) Endpoints() []string {
	select {
	case <-in.ready:
		return append([]string(nil), in.endpoints...)
	default:
		return nil
	}
}

// Run opens the socket, receives until ctx is done, drains and closes it
// (see the package documentation), and returns nil. It returns an error if
// the socket cannot be opened (an endpoint that cannot be bound), or if
// libzmq fails in a way that stops receiving. Run may be called only once.
func (in *Input) Run(ctx context.Context, sink inputs.Sink) error {
	if !in.started.CompareAndSwap(false, true) {
		return errors.New("zmq input: Run called more than once")
	}
	typ := zmq4.PULL
	if in.s.sub {
		typ = zmq4.SUB
	}
	sock, err := zmqsock.Open(zmqsock.Options{
		Type:        typ,
		Bind:        in.s.bind,
		Connect:     in.s.connect,
		Curve:       in.s.curve,
		RecvHWM:     in.s.rcvHWM,
		MaxMsgSize:  in.s.maxMsg,
		Heartbeat:   in.s.heartbeat,
		RecvTimeout: recvTick,
		Subscribe:   in.s.topics,
		Events:      in.peerEvent,
		Log:         in.log,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("zmq input: %w", err)
	}
	in.endpoints = sock.Endpoints()
	close(in.ready)
	in.log.Info("zmq socket open", "socket", typ.String(), "bind", in.s.bind, "connect", in.s.connect,
		"endpoints", in.endpoints, "curve", in.s.curve != nil)

	r := &reader{in: in, z: sock.Z}
	if in.s.syslog != "" {
		r.parser = syslogin.NewParser(in.s.syslog, time.Local, in.name, in.s.stream)
	}
	runErr := r.serve(ctx, sink)
	if runErr == nil {
		sock.Detach()
		r.drain(ctx, sink)
	}
	if err := sock.Close(); err != nil {
		in.log.Warn("closing the zmq socket", "err", err)
	}
	in.metrics.Connections.Sub(float64(in.conns.Swap(0)))
	return runErr
}

// peerEvent runs on the monitor's goroutine.
func (in *Input) peerEvent(e zmqsock.PeerEvent) {
	switch e.Kind {
	case zmqsock.PeerConnected:
		in.conns.Add(1)
		in.metrics.Connections.Inc()
	case zmqsock.PeerDisconnected:
		// Never below zero, whatever libzmq reports around Close.
		for {
			n := in.conns.Load()
			if n <= 0 {
				break
			}
			if in.conns.CompareAndSwap(n, n-1) {
				in.metrics.Connections.Dec()
				break
			}
		}
	case zmqsock.PeerRejected:
		in.metrics.Dropped.WithLabelValues("handshake").Inc()
		if ok, n := in.limiter.Allow("handshake "+e.Endpoint, time.Now()); ok {
			in.log.Warn("zmq peer failed the handshake; it receives and sends nothing", "endpoint", e.Endpoint, "reason", e.Reason, "suppressed", n)
		}
	}
}

// reader is the state of the receiving goroutine.
type reader struct {
	in    *Input
	z     *zmq4.Socket
	slab  []event.Event
	evs   []*event.Event
	bytes int
	fails int
	multi int

	lastAddr, lastPeer string // peerName's cache

	parser *syslogin.Parser // formats auto, rfc5424, rfc3164; nil otherwise
}

// serve receives and emits until ctx ends (nil) or libzmq or the sink fail
// (an error; ctx ending during Emit is not a failure).
func (r *reader) serve(ctx context.Context, sink inputs.Sink) error {
	for ctx.Err() == nil {
		got, err := r.recv(0) // waits up to recvTick
		if err != nil {
			return fmt.Errorf("zmq input: receive: %w", err)
		}
		if !got {
			continue
		}
		if err := r.fill(); err != nil {
			return fmt.Errorf("zmq input: receive: %w", err)
		}
		if err := r.emit(ctx, sink); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("zmq input: %w", err)
		}
	}
	return nil
}

// fill takes messages libzmq already holds, without waiting, until the
// batch is full.
func (r *reader) fill() error {
	for len(r.evs) < maxBatch && r.bytes < maxBatchBytes {
		got, err := r.recv(zmq4.DONTWAIT)
		if err != nil || !got {
			return err
		}
	}
	return nil
}

// drain emits what libzmq had received before Detach, bounded in time.
func (r *reader) drain(ctx context.Context, sink inputs.Sink) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	n := 0
	for dctx.Err() == nil {
		if err := r.fill(); err != nil || len(r.evs) == 0 {
			break
		}
		k := len(r.evs)
		if err := r.emit(dctx, sink); err != nil {
			break
		}
		n += k
	}
	if len(r.evs) > 0 {
		r.in.metrics.Dropped.WithLabelValues("shutdown").Add(float64(len(r.evs)))
	}
	if n > 0 {
		r.in.log.Info("emitted messages received before shutdown", "events", n)
	}
}

// recv reads one message (flags 0: wait up to recvTick) and appends its
// event to the batch. got is false when nothing arrived. Errors are
// returned only when the socket is unusable.
func (r *reader) recv(flags zmq4.Flag) (got bool, err error) {
	var (
		payload []byte
		peer    string
	)
	if r.in.s.json {
		payload, err = r.z.RecvBytes(flags)
	} else {
		var md map[string]string
		payload, md, err = r.z.RecvBytesWithMetadata(flags, "Peer-Address")
		peer = r.peerName(md["Peer-Address"])
	}
	if err != nil {
		if zmqsock.IsAgain(err) {
			return false, nil
		}
		return false, err
	}
	frames := 1
	for {
		more, err := r.z.GetRcvmore()
		if err != nil {
			return false, err
		}
		if !more {
			break
		}
		b, err := r.z.RecvBytes(0) // the rest of a message is always there
		if err != nil {
			return false, err
		}
		frames++
		if frames == 2 {
			payload = b
		}
	}
	if frames > 2 {
		r.multi++
		return true, nil
	}
	r.add(payload, peer, time.Now())
	return true, nil
}

// peerName returns libzmq's Peer-Address without the IPv4-mapped IPv6
// prefix (sockets run in IPv6 mode, so IPv4 peers come as ::ffff:a.b.c.d),
// reusing the previous string when the peer is the same.
func (r *reader) peerName(addr string) string {
	if addr == r.lastAddr {
		return r.lastPeer
	}
	peer := addr
	if a, err := netip.ParseAddr(addr); err == nil {
		peer = a.Unmap().String()
	}
	r.lastAddr, r.lastPeer = addr, peer
	return peer
}

// add decodes payload, which it keeps (pebbe allocates it per frame).
func (r *reader) add(payload []byte, peer string, now time.Time) {
	s := r.in.s
	var ev *event.Event
	if s.json {
		if d, err := format.DecodeJSON(payload); err == nil {
			ev = d
			if ev.Input == "" {
				ev.Input = r.in.name
			}
			if ev.Stream == "" {
				ev.Stream = s.stream
			}
			if ev.Received.IsZero() {
				ev.Received = now
			}
			if ev.Time.IsZero() {
				ev.Time = ev.Received
			}
			if len(ev.Raw) == 0 {
				ev.Raw = []byte(ev.Message)
			}
		} else {
			r.fails++
		}
	}
	if ev == nil {
		if len(r.slab) == cap(r.slab) {
			r.slab = make([]event.Event, 0, eventChunk)
		}
		r.slab = r.slab[:len(r.slab)+1]
		ev = &r.slab[len(r.slab)-1]
		ev.Raw = payload
		if r.parser != nil {
			if r.parser.Parse(ev, payload, now) {
				r.fails++
			}
			ev.Origin = peer
			if ev.Host == "" {
				ev.Host = peer
			}
		} else {
			ev.Received, ev.Time = now, now
			ev.Input, ev.Stream = r.in.name, s.stream
			ev.Origin, ev.Host = peer, peer
			ev.Facility, ev.Severity = -1, -1
			ev.Message = bytesString(payload)
		}
	}
	if r.evs == nil {
		r.evs = make([]*event.Event, 0, 16)
	}
	r.evs = append(r.evs, ev)
	r.bytes += len(payload)
}

// emit hands the batch to the sink and updates the metrics; the batch is
// reset either way (on error its events are counted as dropped).
func (r *reader) emit(ctx context.Context, sink inputs.Sink) error {
	m := r.in.metrics
	if r.multi > 0 {
		m.Dropped.WithLabelValues("multipart").Add(float64(r.multi))
		if ok, n := r.in.limiter.Allow("multipart", time.Now()); ok {
			r.in.log.Warn("dropped messages of more than two frames (want [payload] or [topic, payload])", "messages", r.multi, "suppressed", n)
		}
		r.multi = 0
	}
	if r.fails > 0 {
		m.ParseFailures.Add(float64(r.fails))
		r.fails = 0
	}
	if len(r.evs) == 0 {
		return nil
	}
	evs, nbytes := r.evs, r.bytes
	r.evs, r.bytes = make([]*event.Event, 0, len(evs)), 0
	if err := sink.Emit(ctx, evs); err != nil {
		reason := "emit_error"
		if ctx.Err() != nil || errors.Is(err, inputs.ErrClosed) {
			reason = "shutdown"
		}
		m.Dropped.WithLabelValues(reason).Add(float64(len(evs)))
		return err
	}
	m.Events.Add(float64(len(evs)))
	m.Bytes.Add(float64(nbytes))
	return nil
}

// bytesString returns b as a string without copying; b is an event's Raw,
// never modified after Emit.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
