// Package zmqsock is what the zmq input, the zmq output and `sluice tap`
// share on top of libzmq (through github.com/pebbe/zmq4): endpoint
// validation, CURVE keys (the `curve` block, key files, Z85), and Socket,
// which opens one libzmq socket in a context of its own with Sluice's
// options, an optional ZAP handler that enforces authorized client keys, and
// an optional monitor that reports peers connecting, disconnecting and
// failing the handshake.
//
// libzmq sockets are not safe for concurrent use. A Socket's libzmq socket
// (Socket.Z) belongs to the goroutine that uses it — one at a time, with a
// happens-before edge when it changes hands, as between the router's Open
// and its worker. The ZAP handler and the monitor run on goroutines of
// their own, each owning its own socket; Close stops them.
package zmqsock

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// Options describe one libzmq socket.
type Options struct {
	Type    zmq.Type
	Bind    []string // endpoints to bind; see ValidateEndpoints
	Connect []string // endpoints to connect to
	Curve   *Curve   // nil: no security (ZMTP NULL mechanism)
	// SendHWM and RecvHWM are the high-water marks in messages per peer
	// (ZMQ_SNDHWM, ZMQ_RCVHWM); 0 keeps libzmq's 1000.
	SendHWM, RecvHWM int
	// MaxMsgSize is ZMQ_MAXMSGSIZE: a peer sending a larger frame is
	// disconnected. 0: no limit.
	MaxMsgSize int64
	// Linger is how long Close lets libzmq deliver queued messages.
	Linger time.Duration
	// Heartbeat is ZMQ_HEARTBEAT_IVL (a ZMTP PING every interval; a peer
	// silent for 3 intervals is disconnected). 0: no heartbeats.
	Heartbeat time.Duration
	// SendTimeout and RecvTimeout are ZMQ_SNDTIMEO and ZMQ_RCVTIMEO;
	// 0 keeps libzmq's default (block).
	SendTimeout, RecvTimeout time.Duration
	// Subscribe are SUB subscriptions (topic prefixes; "" is everything).
	Subscribe []string
	// Setup, if set, sets further options before binding or connecting.
	Setup func(*zmq.Socket) error
	// Events, if set, receives the socket's peer events, on the monitor's
	// goroutine, in order.
	Events func(PeerEvent)
	// Log receives the ZAP handler's messages (nil: discarded).
	Log *slog.Logger
}

// PeerKind classifies a PeerEvent.
type PeerKind int

const (
	// PeerConnected: a connection was accepted (bind side) or established
	// (connect side), before the ZMTP handshake.
	PeerConnected PeerKind = iota
	// PeerDisconnected: a connection counted by PeerConnected ended.
	PeerDisconnected
	// PeerRejected: the ZMTP handshake failed (wrong CURVE key, client
	// not authorized, peer without CURVE, protocol mismatch). A
	// PeerDisconnected follows.
	PeerRejected
)

// PeerEvent is one event of the socket's monitor.
type PeerEvent struct {
	Kind PeerKind
	// Endpoint is what libzmq reports: for a socket that binds, the
	// local endpoint (libzmq 4.3's stable monitor does not name the
	// remote peer); for one that connects, the peer's endpoint.
	Endpoint string
	// Reason explains a PeerRejected.
	Reason string
}

// Socket is one open libzmq socket with its own context.
type Socket struct {
	Z *zmq.Socket // the libzmq socket; see the package doc for ownership

	ctx       *zmq.Context
	bound     []string // resolved endpoints bound (ZMQ_LAST_ENDPOINT)
	connected []string
	mon       *helper
	zap       *helper
	detached  bool
	closed    bool
}

// monitorEndpoint and zapEndpoint are inproc names inside the Socket's own
// context, so they never collide between Sockets.
const (
	monitorEndpoint = "inproc://sluice.monitor"
	zapEndpoint     = "inproc://zeromq.zap.01" // ZeroMQ RFC 27
)

// Open creates the context and socket, sets the options, starts the ZAP
// handler and the monitor if needed, then binds and connects. Connecting
// never waits for the peer: libzmq connects (and reconnects) in the
// background. On error everything opened is closed again.
func Open(o Options) (*Socket, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, err := zmq.NewContext()
	if err != nil {
		return nil, fmt.Errorf("zmq: new context: %w", err)
	}
	z, err := ctx.NewSocket(o.Type)
	if err != nil {
		_ = ctx.Term()
		return nil, fmt.Errorf("zmq: new %s socket: %w", o.Type, err)
	}
	s := &Socket{Z: z, ctx: ctx}
	fail := func(err error) (*Socket, error) {
		s.Close()
		return nil, err
	}
	if err := s.setOptions(o); err != nil {
		return fail(err)
	}
	if o.Curve != nil && o.Curve.Server && o.Curve.Authorized != nil {
		h, err := startZAP(ctx, o.Curve.Authorized, log)
		if err != nil {
			return fail(err)
		}
		s.zap = h
	}
	if o.Events != nil {
		h, err := startMonitor(ctx, z, o.Events)
		if err != nil {
			return fail(err)
		}
		s.mon = h
	}
	for _, ep := range o.Bind {
		if err := z.Bind(ep); err != nil {
			return fail(fmt.Errorf("bind %s: %w", ep, err))
		}
		last, err := z.GetLastEndpoint()
		if err != nil || last == "" {
			last = ep
		}
		s.bound = append(s.bound, last)
	}
	for _, ep := range o.Connect {
		if err := z.Connect(ep); err != nil {
			return fail(fmt.Errorf("connect %s: %w", ep, err))
		}
		s.connected = append(s.connected, ep)
	}
	return s, nil
}

func (s *Socket) setOptions(o Options) error {
	z := s.Z
	set := func(name string, err error) error {
		if err != nil {
			return fmt.Errorf("zmq: setting %s: %w", name, err)
		}
		return nil
	}
	if err := set("ZMQ_LINGER", z.SetLinger(max(o.Linger, 0))); err != nil {
		return err
	}
	if err := set("ZMQ_IPV6", z.SetIpv6(true)); err != nil {
		return err
	}
	if err := set("ZMQ_RECONNECT_IVL", z.SetReconnectIvl(100*time.Millisecond)); err != nil {
		return err
	}
	if err := set("ZMQ_RECONNECT_IVL_MAX", z.SetReconnectIvlMax(2*time.Second)); err != nil {
		return err
	}
	if o.SendHWM > 0 {
		if err := set("ZMQ_SNDHWM", z.SetSndhwm(o.SendHWM)); err != nil {
			return err
		}
	}
	if o.RecvHWM > 0 {
		if err := set("ZMQ_RCVHWM", z.SetRcvhwm(o.RecvHWM)); err != nil {
			return err
		}
	}
	if o.MaxMsgSize > 0 {
		if err := set("ZMQ_MAXMSGSIZE", z.SetMaxmsgsize(o.MaxMsgSize)); err != nil {
			return err
		}
	}
	if o.Heartbeat > 0 {
		if err := set("ZMQ_HEARTBEAT_IVL", z.SetHeartbeatIvl(o.Heartbeat)); err != nil {
			return err
		}
		if err := set("ZMQ_HEARTBEAT_TIMEOUT", z.SetHeartbeatTimeout(3*o.Heartbeat)); err != nil {
			return err
		}
	}
	if o.SendTimeout > 0 {
		if err := set("ZMQ_SNDTIMEO", z.SetSndtimeo(o.SendTimeout)); err != nil {
			return err
		}
	}
	if o.RecvTimeout > 0 {
		if err := set("ZMQ_RCVTIMEO", z.SetRcvtimeo(o.RecvTimeout)); err != nil {
			return err
		}
	}
	if c := o.Curve; c != nil {
		if c.Server {
			if err := set("ZMQ_CURVE_SERVER", z.SetCurveServer(1)); err != nil {
				return err
			}
			if err := set("ZMQ_CURVE_SECRETKEY", z.SetCurveSecretkey(c.SecretKey)); err != nil {
				return err
			}
		} else {
			pub, sec := c.PublicKey, c.SecretKey
			if sec == "" {
				var err error
				if pub, sec, err = NewKeypair(); err != nil {
					return err
				}
			}
			if err := set("ZMQ_CURVE_SERVERKEY", z.SetCurveServerkey(c.ServerKey)); err != nil {
				return err
			}
			if err := set("ZMQ_CURVE_PUBLICKEY", z.SetCurvePublickey(pub)); err != nil {
				return err
			}
			if err := set("ZMQ_CURVE_SECRETKEY", z.SetCurveSecretkey(sec)); err != nil {
				return err
			}
		}
	}
	for _, t := range o.Subscribe {
		if err := set("ZMQ_SUBSCRIBE", z.SetSubscribe(t)); err != nil {
			return err
		}
	}
	if o.Setup != nil {
		return o.Setup(z)
	}
	return nil
}

// Endpoints returns the endpoints bound (as resolved by libzmq: a "*" port
// is replaced by the one chosen) and connected, in configuration order.
func (s *Socket) Endpoints() []string {
	out := make([]string, 0, len(s.bound)+len(s.connected))
	for _, ep := range s.bound {
		out = append(out, unmapEndpoint(ep))
	}
	return append(out, s.connected...)
}

// unmapEndpoint turns "tcp://[::ffff:127.0.0.1]:5556", which libzmq reports
// for an IPv4 address in IPv6 mode, into "tcp://127.0.0.1:5556".
func unmapEndpoint(ep string) string {
	rest, ok := strings.CutPrefix(ep, "tcp://")
	if !ok {
		return ep
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return ep
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is4In6() {
		return "tcp://" + net.JoinHostPort(a.Unmap().String(), port)
	}
	return ep
}

// Detach unbinds and disconnects every endpoint, so that no new message
// arrives; messages libzmq already received stay readable. Errors are
// ignored (the socket is about to close). Call it from the socket's owner.
func (s *Socket) Detach() {
	if s.detached || s.closed {
		return
	}
	s.detached = true
	for _, ep := range s.bound {
		_ = s.Z.Unbind(ep)
	}
	for _, ep := range s.connected {
		_ = s.Z.Disconnect(ep)
	}
}

// Close stops the monitor, closes the socket (libzmq keeps trying to
// deliver queued messages for Options.Linger), stops the ZAP handler and
// terminates the context, which returns once linger is over. It is
// idempotent; call it from the socket's owner.
func (s *Socket) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.mon != nil {
		// Stop the events first: libzmq blocks an I/O thread sending an
		// event nobody reads.
		_ = s.Z.Monitor("", 0)
		s.mon.stop()
	}
	err := s.Z.Close()
	if s.zap != nil {
		s.zap.stop()
	}
	if terr := s.ctx.Term(); err == nil {
		err = terr
	}
	if err != nil {
		return fmt.Errorf("zmq: close: %w", err)
	}
	return nil
}

// IsAgain reports whether err is EAGAIN (a timeout, or nothing to read).
func IsAgain(err error) bool {
	return zmq.AsErrno(err) == zmq.Errno(syscall.EAGAIN)
}

// IsClosed reports whether err means the socket or its context is gone.
func IsClosed(err error) bool {
	return zmq.AsErrno(err) == zmq.ETERM || errors.Is(err, zmq.ErrorSocketClosed) || errors.Is(err, zmq.ErrorContextClosed)
}

// helper is a goroutine owning one socket, stopped with stop.
type helper struct {
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

func newHelper() *helper {
	return &helper{quit: make(chan struct{}), done: make(chan struct{})}
}

// stop asks the goroutine to end and waits for it.
func (h *helper) stop() {
	h.once.Do(func() { close(h.quit) })
	<-h.done
}

// pollTick is how often helper goroutines and receive loops wake up to
// notice that they should stop.
const pollTick = 100 * time.Millisecond

// startMonitor connects a PAIR socket to the monitor endpoint (inproc
// connects before bind, so no event is sent before a reader exists), then
// enables monitoring on z and reads events on a goroutine.
func startMonitor(ctx *zmq.Context, z *zmq.Socket, fn func(PeerEvent)) (*helper, error) {
	m, err := ctx.NewSocket(zmq.PAIR)
	if err != nil {
		return nil, fmt.Errorf("zmq: monitor socket: %w", err)
	}
	if err := m.SetRcvtimeo(pollTick); err == nil {
		err = m.SetLinger(0)
	}
	if err == nil {
		err = m.Connect(monitorEndpoint)
	}
	if err == nil {
		err = z.Monitor(monitorEndpoint, zmq.EVENT_ACCEPTED|zmq.EVENT_CONNECTED|zmq.EVENT_DISCONNECTED|
			zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL|zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL|zmq.EVENT_HANDSHAKE_FAILED_AUTH)
	}
	if err != nil {
		_ = m.Close()
		return nil, fmt.Errorf("zmq: monitor: %w", err)
	}
	h := newHelper()
	go func() {
		defer close(h.done)
		defer m.Close()
		for {
			select {
			case <-h.quit:
				return
			default:
			}
			ev, addr, val, err := m.RecvEvent(0)
			if err != nil {
				if IsClosed(err) {
					return
				}
				continue // EAGAIN: a tick without events
			}
			pe := PeerEvent{Endpoint: addr}
			switch ev {
			case zmq.EVENT_ACCEPTED, zmq.EVENT_CONNECTED:
				pe.Kind = PeerConnected
			case zmq.EVENT_DISCONNECTED:
				pe.Kind = PeerDisconnected
			case zmq.EVENT_HANDSHAKE_FAILED_AUTH:
				pe.Kind, pe.Reason = PeerRejected, fmt.Sprintf("client not authorized (ZAP status %d): its public key is not in authorized_keys", val)
			case zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
				pe.Kind, pe.Reason = PeerRejected, fmt.Sprintf("handshake protocol error 0x%x: with CURVE, usually a client using the wrong server key, or a peer with CURVE on one side only", val)
			case zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
				pe.Kind, pe.Reason = PeerRejected, fmt.Sprintf("handshake failed: %v", zmq.Errno(val))
			default:
				continue
			}
			fn(pe)
		}
	}()
	return h, nil
}

// startZAP binds a ZAP handler (ZeroMQ RFC 27) in ctx that accepts CURVE
// clients whose public key is in authorized and refuses the rest. libzmq
// consults it for every CURVE handshake of the context's server sockets.
func startZAP(ctx *zmq.Context, authorized map[[32]byte]bool, log *slog.Logger) (*helper, error) {
	r, err := ctx.NewSocket(zmq.REP)
	if err != nil {
		return nil, fmt.Errorf("zmq: ZAP socket: %w", err)
	}
	if err := r.SetRcvtimeo(pollTick); err == nil {
		err = r.SetLinger(0)
	}
	if err == nil {
		err = r.Bind(zapEndpoint)
	}
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("zmq: ZAP handler: %w", err)
	}
	h := newHelper()
	limiter := &LogLimiter{Every: 10 * time.Second}
	go func() {
		defer close(h.done)
		defer r.Close()
		for {
			select {
			case <-h.quit:
				return
			default:
			}
			req, err := r.RecvMessageBytes(0)
			if err != nil {
				if IsClosed(err) {
					return
				}
				continue
			}
			reply := zapAnswer(req, authorized)
			if reply[2] != "200" && len(req) >= 7 {
				key := z85Encode(req[6])
				if ok, n := limiter.Allow(key, time.Now()); ok {
					log.Warn("refused a CURVE client: its public key is not in authorized_keys",
						"client_key", key, "peer", string(req[3]), "suppressed", n)
				}
			}
			if _, err := r.SendMessage(reply[0], reply[1], reply[2], reply[3], reply[4], reply[5]); err != nil && IsClosed(err) {
				return
			}
		}
	}()
	return h, nil
}

// zapAnswer builds the reply frames to a ZAP request:
// version, request id, domain, address, identity, mechanism, credentials….
func zapAnswer(req [][]byte, authorized map[[32]byte]bool) [6]string {
	id := ""
	if len(req) > 1 {
		id = string(req[1])
	}
	deny := func(code, text string) [6]string { return [6]string{"1.0", id, code, text, "", ""} }
	if len(req) < 6 || string(req[0]) != "1.0" {
		return deny("500", "malformed ZAP request")
	}
	if string(req[5]) != "CURVE" || len(req) != 7 || len(req[6]) != 32 {
		return deny("400", "CURVE required")
	}
	if !authorized[[32]byte(req[6])] {
		return deny("400", "client key not authorized")
	}
	return [6]string{"1.0", id, "200", "OK", z85Encode(req[6]), ""}
}

// maxLimiterKeys bounds the keys a LogLimiter remembers.
const maxLimiterKeys = 1024

// LogLimiter rate-limits log lines by key. It is safe for concurrent use.
type LogLimiter struct {
	Every      time.Duration
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

// Allow reports whether a line for key may be logged now, and how many
// lines for it were suppressed since the last one allowed.
func (l *LogLimiter) Allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil || len(l.last) >= maxLimiterKeys {
		// Bounded: a peer inventing keys must not grow this forever.
		l.last = map[string]time.Time{}
		l.suppressed = map[string]int{}
	}
	if t, ok := l.last[key]; ok && now.Sub(t) < l.Every {
		l.suppressed[key]++
		return false, 0
	}
	n := l.suppressed[key]
	l.last[key] = now
	delete(l.suppressed, key)
	return true, n
}
