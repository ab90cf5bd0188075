// Package syslog is the syslog input of Sluice: RFC 5424 and RFC 3164
// messages over UDP (one message per datagram, RFC 5426), TCP (RFC 6587
// octet counting and newline framing, detected per frame) and TLS (RFC
// 5425; framed as TCP), parsed with go-syslog's per-message machines.
//
// The router builds an input with New from the decoded `input "syslog"`
// block and calls Run once. Every frame becomes one event, even when it
// parses as neither RFC 5424 nor RFC 3164 (then Message is the whole frame
// and ParseFailures counts it); frames are dropped only when they exceed
// max_message_bytes, are cut short by the end of a connection, or cannot be
// framed (see Config and the Dropped reasons below).
//
// Dropped reasons counted in inputs.Metrics.Dropped:
//
//	oversize         a frame or datagram longer than max_message_bytes
//	truncated        an octet-counted frame cut short by the end of its connection
//	bad_frame        a MSGLEN of more than 10 digits; the connection is closed
//	max_connections  a TCP connection over max_connections, closed at once
//	tls_handshake    a TLS connection whose handshake failed or timed out (no
//	                 or a bad client certificate, a TLS version below
//	                 min_version, a plain-text client…); closed. A peer that
//	                 closes before completing the handshake without an
//	                 alert (a TCP health check) is not counted.
//	shutdown         events read but refused by the sink while shutting down
//	emit_error       events refused by the sink for another reason
package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/internal/tlsconf"
)

// Input serves the listeners of one syslog input block. Build it with New.
//
// Run is called once, by the router. Ready and Addrs may be called from
// any goroutine at any time.
//
// Emit batches: each Emit carries up to 256 events (or about 1 MiB of raw
// bytes) read from one connection or UDP socket. A batch is emitted as soon
// as the input has no further complete frame buffered, so batching adds no
// latency. Each Emit gets a freshly allocated slice, which the input never
// touches again, nor the events it points to. Events are allocated in
// chunks of 64 and their Raw bytes in 16 KiB chunks shared by consecutive
// events of the same connection or socket, so a retained event keeps its
// chunk alive. For format "raw" and unparsed frames, Message shares the
// bytes of Raw (both immutable).
//
// Received is the time of the read that completed the frame (TCP) or of the
// receive call that returned the datagram (UDP).
type Input struct {
	s       *settings
	name    string
	log     *slog.Logger
	metrics *inputs.Metrics
	limiter logLimiter

	started atomic.Bool
	ready   chan struct{}
	addrs   []net.Addr // written once, before ready is closed
	expiry  *tlsconf.ExpiryCollector
}

// Describe implements prometheus.Collector: the expiry time of the
// certificate served by tls:// listeners
// (sluice_tls_certificate_expiry_timestamp_seconds). It is described even
// without TLS, so that the registry can unregister the input when a reload
// replaces it (an empty Describe would make it an unchecked collector,
// which cannot be unregistered).
func (in *Input) Describe(ch chan<- *prometheus.Desc) { in.expiry.Describe(ch) }

// Collect implements prometheus.Collector; without TLS it exports nothing.
func (in *Input) Collect(ch chan<- prometheus.Metric) { in.expiry.Collect(ch) }

var _ inputs.Readier = (*Input)(nil)

// New validates cfg and returns the input (a *Input). It has no side
// effects: sockets are opened by Run (New only reads the certificate and
// CA files of the tls block, so bad ones are configuration errors).
// Invalid attributes are reported as *conf.FieldError values joined with
// errors.Join.
func New(cfg *Config, env inputs.Env) (inputs.Input, error) {
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := validate(cfg, func(err error) {
		log.Error("TLS file reload failed", "err", err)
	})
	if err != nil {
		return nil, err
	}
	m := env.Metrics
	if m == nil {
		m = inputs.NewDiscardMetrics()
	}
	if w := tlsconf.ExpiryWarning(s.tls, time.Now()); w != "" {
		log.Warn(w)
	}
	return &Input{
		s:       s,
		name:    env.Name,
		log:     log,
		metrics: m,
		limiter: logLimiter{every: 10 * time.Second},
		ready:   make(chan struct{}),
		expiry:  tlsconf.NewExpiryCollector("input", env.Name, s.tls),
	}, nil
}

// Ready returns a channel closed once Run has bound every listener. It
// stays open if binding fails.
func (in *Input) Ready() <-chan struct{} { return in.ready }

// Addrs returns the bound addresses, one per listen entry in the order
// configured (a *net.TCPAddr for tcp:// and tls://, a *net.UDPAddr for
// udp://; with port 0 the port chosen).
// It returns nil until Ready is closed.
func (in *Input) Addrs() []net.Addr {
	select {
	case <-in.ready:
		return append([]net.Addr(nil), in.addrs...)
	default:
		return nil
	}
}

// Run binds every listen address, serves until ctx is done, then closes
// listeners and connections, waits for all its goroutines and returns nil.
// If an address cannot be bound, Run closes the others and returns an
// error naming it. Run may be called only once.
func (in *Input) Run(ctx context.Context, sink inputs.Sink) error {
	if !in.started.CompareAndSwap(false, true) {
		return errors.New("syslog input: Run called more than once")
	}
	var (
		tcp    []listener
		udp    [][]*net.UDPConn
		addrs  []net.Addr
		closer []func()
	)
	closeAll := func() {
		for _, c := range closer {
			c()
		}
	}
	lc := net.ListenConfig{}
	for _, la := range in.s.listen {
		if la.isUDP() {
			socks, err := in.listenUDP(ctx, la)
			if err != nil {
				closeAll()
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("listen %s: %w", la.spec, err)
			}
			udp = append(udp, socks)
			for _, c := range socks {
				closer = append(closer, func() { _ = c.Close() })
			}
			addrs = append(addrs, socks[0].LocalAddr())
			continue
		}
		ln, err := lc.Listen(ctx, la.network, la.address)
		if err != nil {
			closeAll()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("listen %s: %w", la.spec, err)
		}
		l := listener{ln: ln}
		transport := "tcp"
		if la.tls {
			l.tls, transport = in.s.tls, "tls"
		}
		in.log.Info("listening", "transport", transport, "addr", ln.Addr().String())
		tcp = append(tcp, l)
		closer = append(closer, func() { _ = ln.Close() })
		addrs = append(addrs, ln.Addr())
	}
	in.addrs = addrs
	close(in.ready)

	conns := &connSet{m: make(map[net.Conn]struct{}), max: in.s.maxConns}
	var wg sync.WaitGroup
	for _, l := range tcp {
		wg.Go(func() { in.acceptLoop(ctx, l, conns, sink, &wg) })
	}
	for _, socks := range udp {
		for _, c := range socks {
			wg.Go(func() { in.readUDP(ctx, c, sink) })
		}
	}
	<-ctx.Done()
	closeAll()
	conns.closeAll()
	wg.Wait()
	return nil
}

// warn logs at Warn level at most once per limiter period for key,
// reporting how many were suppressed since. It reports whether it logged.
func (in *Input) warn(key, msg string, args ...any) bool {
	ok, n := in.limiter.allow(key, time.Now())
	if ok {
		if n > 0 {
			args = append(args, "suppressed", n)
		}
		in.log.Warn(msg, args...)
	}
	return ok
}

// listener is a bound stream listener; tls is set for tls:// addresses.
type listener struct {
	ln  net.Listener
	tls *tls.Config
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
	if l.last == nil {
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
