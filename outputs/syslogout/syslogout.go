// Package syslogout is the `syslog` output: it forwards events to other
// syslog servers over UDP, TCP or TLS (RFC 5425), to several targets with
// failover or round-robin, in the bytes it received (raw), RFC 5424 or
// RFC 3164.
//
// Delivery: Write frames the whole batch into one buffer and writes it to
// one target with as few syscalls as the kernel allows; it returns nil once
// the kernel accepted every byte. TCP and TLS have no application-level
// acknowledgement (syslog without RELP), so what sits in the socket buffers
// when a connection resets is lost. To narrow that window each stream
// connection has a reader goroutine (watch) that consumes what the server
// sends (TLS session tickets, alerts) and notices a close or reset, and
// Write replaces a connection found closed before reusing it; Close shuts
// connections down gracefully (close_notify, FIN, then up to closeWait for
// the peer). A cancelled context ends a blocked write, and a connection
// whose write failed is never reused.
// A failed target is marked down and the batch goes to the next one in the
// same Write; when every target fails Write returns an error and the router
// retries the same batch later (the events stay in the output's queue).
//
// The router's worker is the only caller of Write and Close.
package syslogout

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/internal/tlsconf"
	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/outputs/format"
	"github.com/sluicelog/sluice/router/event"
)

// Config is the body of `output "syslog" "NAME"`.
type Config struct {
	// Targets are "udp://host:port", "tcp://host:port" or "tls://host:port"
	// (udp4/udp6/tcp4/tcp6 pin the IP version). At least one.
	Targets []string `hcl:"targets"`
	// Mode is "failover" (default: everything goes to the first target that
	// works; after failback_after the first ones are tried again) or
	// "round_robin" (each batch to the next working target).
	Mode string `hcl:"mode,optional"`
	// Framing is "octet_counting" (RFC 6587 / RFC 5425 "LEN SP MSG"; default)
	// or "newline" (each message ends with LF; an LF inside a message is sent
	// as a space). UDP targets send one message per datagram and ignore it.
	Framing string `hcl:"framing,optional"`
	// Format is "raw" (default: the message exactly as received; events with
	// no raw bytes are sent as rfc5424), "rfc5424" or "rfc3164".
	Format string `hcl:"format,optional"`
	// ConnectTimeout bounds a TCP connect plus TLS handshake (default "5s").
	ConnectTimeout string `hcl:"connect_timeout,optional"`
	// WriteTimeout bounds writing one batch (default "30s").
	WriteTimeout string `hcl:"write_timeout,optional"`
	// FailbackAfter is how long a failed target is left alone before it is
	// tried again (default "30s").
	FailbackAfter string `hcl:"failback_after,optional"`
	// MaxDatagramBytes caps a UDP datagram; longer messages are truncated
	// and counted (default 65000; RFC 5426 receivers must take 480, should
	// take 2048).
	MaxDatagramBytes int `hcl:"max_datagram_bytes,optional"`
	// TLS configures tls:// targets (verification against the system roots
	// without it).
	TLS *tlsconf.Client `hcl:"tls,block"`
}

// DefaultConfig returns a Config with the defaults applied.
func DefaultConfig() *Config {
	return &Config{Mode: "failover", Framing: "octet_counting", Format: "raw", ConnectTimeout: "5s",
		WriteTimeout: "30s", FailbackAfter: "30s", MaxDatagramBytes: 65000}
}

type encoding int

const (
	encRaw encoding = iota
	enc5424
	enc3164
)

// tlsProbeWait is how long a new TLS connection whose server asked for a
// client certificate is watched for a refusal before it is used.
const tlsProbeWait = 200 * time.Millisecond

// target is one destination and its connection (owned by the worker).
type target struct {
	spec      string // as configured, for logs and metric labels
	network   string // "udp", "tcp" (also for tls), with 4/6 suffix
	addr      string
	tls       bool
	conn      net.Conn
	watch     *watcher // the reader of a stream conn; nil for UDP
	downUntil time.Time

	messages, bytes, connects, connectErrors, writeErrors atomic.Uint64
}

type output struct {
	name       string
	log        *slog.Logger
	targets    []*target
	roundRobin bool
	newline    bool
	enc        encoding
	connectTO  time.Duration
	writeTO    time.Duration
	failback   time.Duration
	maxDgram   int
	tlsConfig  *tls.Config

	descs     descs
	expiry    *tlsconf.ExpiryCollector // with a client certificate
	next      int                      // round robin: next target index; failover: current target
	buf       []byte
	failovers atomic.Uint64
	truncated atomic.Uint64
	lfs       atomic.Uint64
}

// New validates cfg and returns the output. It reads the TLS files but
// opens no connection: Write connects lazily. Errors are *conf.FieldError
// values joined with errors.Join.
func New(cfg *Config, env outputs.Env) (outputs.Output, error) {
	o := &output{name: env.Name, log: env.Logger, descs: newDescs(env.Name)}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	add := func(field string, err error) { errs = append(errs, conf.Field(field, err)) }
	if len(cfg.Targets) == 0 {
		add("targets", errors.New(`at least one target is required, e.g. ["tcp://logs.example.net:601"]`))
	}
	hasTLS := false
	for _, s := range cfg.Targets {
		t, err := parseTarget(s)
		if err != nil {
			add("targets", err)
			continue
		}
		hasTLS = hasTLS || t.tls
		o.targets = append(o.targets, t)
	}
	switch cfg.Mode {
	case "failover":
	case "round_robin":
		o.roundRobin = true
	default:
		add("mode", fmt.Errorf("unknown mode %q (want \"failover\" or \"round_robin\")", cfg.Mode))
	}
	switch cfg.Framing {
	case "octet_counting":
	case "newline":
		o.newline = true
	default:
		add("framing", fmt.Errorf("unknown framing %q (want \"octet_counting\" or \"newline\")", cfg.Framing))
	}
	switch cfg.Format {
	case "raw":
	case "rfc5424":
		o.enc = enc5424
	case "rfc3164":
		o.enc = enc3164
	default:
		add("format", fmt.Errorf("unknown format %q (want \"raw\", \"rfc5424\" or \"rfc3164\")", cfg.Format))
	}
	dur := func(field, s string, min time.Duration) time.Duration {
		d, err := conf.ParseDuration(s)
		if err == nil && d < min {
			err = fmt.Errorf("must be at least %s", min)
		}
		if err != nil {
			add(field, err)
		}
		return d
	}
	o.connectTO = dur("connect_timeout", cfg.ConnectTimeout, time.Millisecond)
	o.writeTO = dur("write_timeout", cfg.WriteTimeout, time.Millisecond)
	o.failback = dur("failback_after", cfg.FailbackAfter, 0)
	o.maxDgram = cfg.MaxDatagramBytes
	if o.maxDgram < 480 || o.maxDgram > 65507 {
		add("max_datagram_bytes", fmt.Errorf("must be between 480 and 65507, got %d", o.maxDgram))
	}
	if cfg.TLS != nil {
		if !hasTLS && len(cfg.Targets) > 0 {
			add("tls", errors.New("a tls block needs at least one tls:// target"))
		}
		tc, terrs := cfg.TLS.Build("tls.", func(err error) { o.log.Error("TLS file reload failed", "err", err) })
		errs = append(errs, terrs...)
		o.tlsConfig = tc
		o.expiry = tlsconf.NewExpiryCollector("output", env.Name, tc)
		if w := tlsconf.ExpiryWarning(tc, time.Now()); w != "" {
			o.log.Warn(w)
		}
		if cfg.TLS.InsecureSkipVerify {
			o.log.Warn("tls.insecure_skip_verify is set: the servers' certificates are not verified, so anyone on the path can read and alter what this output sends")
		}
	} else if hasTLS {
		o.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return o, nil
}

func parseTarget(s string) (*target, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return nil, fmt.Errorf("invalid target %q (want \"udp://host:port\", \"tcp://host:port\" or \"tls://host:port\")", s)
	}
	t := &target{spec: s}
	switch scheme {
	case "udp", "udp4", "udp6", "tcp", "tcp4", "tcp6":
		t.network = scheme
	case "tls":
		t.network, t.tls = "tcp", true
	default:
		return nil, fmt.Errorf("invalid target %q: unknown scheme %q (want udp, tcp or tls)", s, scheme)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return nil, fmt.Errorf("invalid target %q: %w", s, err)
	}
	if host == "" {
		return nil, fmt.Errorf("invalid target %q: the host is empty", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("invalid target %q: port must be a number from 1 to 65535", s)
	}
	t.addr = rest
	return t, nil
}

// Write sends evs to one target: the current one (failover) or the next
// (round robin), moving on to the others in order when a target fails.
func (o *output) Write(ctx context.Context, evs []*event.Event) error {
	now := time.Now()
	var errs []error
	n := len(o.targets)
	start := o.next
	if !o.roundRobin {
		start = 0 // the first target that is not resting
	}
	for i := range n {
		idx := (start + i) % n
		t := o.targets[idx]
		if now.Before(t.downUntil) {
			continue
		}
		err := o.writeTo(ctx, t, evs)
		if err == nil {
			if o.roundRobin {
				o.next = (idx + 1) % n
			} else if idx != o.next {
				o.log.Info("forwarding to another target", "target", t.spec, "previous", o.targets[o.next].spec)
				o.next = idx
			}
			return nil
		}
		if ctx.Err() != nil {
			// A write cut short leaves a partial frame: never append
			// the next batch to it.
			t.abort()
			return ctx.Err()
		}
		t.writeErrors.Add(1)
		t.abort()
		t.downUntil = time.Now().Add(o.failback)
		if n > 1 {
			o.failovers.Add(1)
		}
		o.log.Warn("syslog target failed", "target", t.spec, "retry_after", o.failback, "err", err)
		errs = append(errs, fmt.Errorf("%s: %w", t.spec, err))
	}
	if len(errs) == 0 {
		// Every target is resting: try the one that failed longest ago
		// rather than refuse, so a single-target output never waits more
		// than the router's backoff.
		oldest := o.targets[0]
		for _, t := range o.targets[1:] {
			if t.downUntil.Before(oldest.downUntil) {
				oldest = t
			}
		}
		err := o.writeTo(ctx, oldest, evs)
		if err == nil {
			oldest.downUntil = time.Time{}
			return nil
		}
		if ctx.Err() != nil {
			oldest.abort()
			return ctx.Err()
		}
		oldest.writeErrors.Add(1)
		oldest.abort()
		oldest.downUntil = time.Now().Add(o.failback)
		errs = append(errs, fmt.Errorf("%s: %w", oldest.spec, err))
	}
	return fmt.Errorf("no syslog target accepted the batch: %w", errors.Join(errs...))
}

func (o *output) writeTo(ctx context.Context, t *target, evs []*event.Event) error {
	if t.watch != nil && (t.watch.ended() || finReceived(t.conn)) {
		t.abort() // the peer went away while we were idle: reconnect first
	}
	if t.conn == nil {
		if err := o.connect(ctx, t); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(o.writeTO)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := t.conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	// A cancelled context (a forced stop) ends a blocked write at once.
	conn := t.conn
	defer context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Unix(1, 0)) })()
	if t.isUDP() {
		return o.writeDatagrams(t, evs)
	}
	o.buf = o.buf[:0]
	for _, ev := range evs {
		o.buf = o.frame(o.buf, ev)
	}
	if _, err := t.conn.Write(o.buf); err != nil {
		return err
	}
	t.messages.Add(uint64(len(evs)))
	t.bytes.Add(uint64(len(o.buf)))
	if cap(o.buf) > 8<<20 {
		o.buf = nil // do not keep a huge batch's buffer
	}
	return nil
}

func (o *output) writeDatagrams(t *target, evs []*event.Event) error {
	var sent, bytes uint64
	defer func() { t.messages.Add(sent); t.bytes.Add(bytes) }()
	for _, ev := range evs {
		o.buf = o.encode(o.buf[:0], ev)
		msg := o.buf
		if len(msg) > o.maxDgram {
			msg = msg[:o.maxDgram]
			o.truncated.Add(1)
		}
		if _, err := t.conn.Write(msg); err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				// An ICMP port unreachable for an earlier datagram: the
				// receiver is not listening. Retry the rest later.
				return fmt.Errorf("udp receiver unreachable: %w", err)
			}
			return err
		}
		sent++
		bytes += uint64(len(msg))
	}
	return nil
}

// frame appends ev with its stream framing.
func (o *output) frame(dst []byte, ev *event.Event) []byte {
	if o.newline {
		start := len(dst)
		dst = o.encode(dst, ev)
		msg := dst[start:]
		if len(msg) > 0 && msg[len(msg)-1] == '\n' {
			dst = dst[:len(dst)-1]
			msg = msg[:len(msg)-1]
		}
		for i, c := range msg {
			if c == '\n' {
				msg[i] = ' '
				o.lfs.Add(1)
			}
		}
		return append(dst, '\n')
	}
	// Octet counting: reserve room for the length, encode, then shift if
	// the length has fewer digits than reserved.
	const reserve = 10
	start := len(dst)
	dst = append(dst, make([]byte, reserve+1)...)
	dst = o.encode(dst, ev)
	n := len(dst) - start - reserve - 1
	var num [20]byte
	digits := strconv.AppendInt(num[:0], int64(n), 10)
	head := len(digits) + 1
	copy(dst[start+head:], dst[start+reserve+1:])
	dst = dst[:start+head+n]
	copy(dst[start:], digits)
	dst[start+len(digits)] = ' '
	return dst
}

// encode appends ev in the configured format, without framing.
func (o *output) encode(dst []byte, ev *event.Event) []byte {
	switch {
	case o.enc == enc3164:
		return AppendRFC3164(dst, ev)
	case o.enc == encRaw && len(ev.Raw) > 0:
		return append(dst, ev.Raw...)
	default:
		return format.RFC5424.Append(dst, ev)
	}
}

func (o *output) connect(ctx context.Context, t *target) error {
	dctx, cancel := context.WithTimeout(ctx, o.connectTO)
	defer cancel()
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	var c net.Conn
	var err error
	if t.tls {
		cfg := o.tlsConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(t.addr)
		}
		var asked bool
		certs, get := cfg.Certificates, cfg.GetClientCertificate
		cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked = true
			switch {
			case get != nil: // tls.cert_file, reloaded when renewed
				return get(cri)
			case len(certs) > 0:
				return &certs[0], nil
			}
			return &tls.Certificate{}, nil // none configured: the server decides
		}
		c, err = (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(dctx, t.network, t.addr)
		if err == nil {
			w := watch(c)
			if asked {
				// Under TLS 1.3 a server that rejects the client's
				// certificate (or its absence) says so only after the
				// client's handshake has completed: a client that wrote
				// at once would see success while its data was discarded.
				select {
				case <-w.done:
					err = fmt.Errorf("the server refused the connection after the TLS handshake (check tls.cert_file and its CA): %w", w.err)
					_ = c.Close()
				case <-time.After(tlsProbeWait):
				}
			}
			t.watch = w
		}
	} else {
		c, err = d.DialContext(dctx, t.network, t.addr)
		if err == nil && !strings.HasPrefix(t.network, "udp") {
			t.watch = watch(c)
		}
	}
	if err != nil {
		t.watch = nil
		t.connectErrors.Add(1)
		return fmt.Errorf("connecting: %w", err)
	}
	t.connects.Add(1)
	t.conn = c
	o.log.Debug("connected", "target", t.spec)
	return nil
}

func (t *target) isUDP() bool { return strings.HasPrefix(t.network, "udp") }

// abort closes the connection at once (it failed, or a write was cut
// short), without waiting for its reader.
func (t *target) abort() {
	if t.conn != nil {
		c := t.conn
		if tc, ok := c.(*tls.Conn); ok {
			c = tc.NetConn() // tls.Conn.Close would send close_notify first, and may block on it
		}
		_ = c.Close()
		t.conn, t.watch = nil, nil
	}
}

// close ends the connection gracefully: for a stream, it shuts down the
// sending side (TLS close_notify, then TCP FIN) and waits for the peer to
// close its side, so that what the kernel still holds is delivered before
// the socket goes; all of it within closeWait, then it closes.
func (t *target) close() {
	if t.conn == nil {
		return
	}
	if w := t.watch; w != nil {
		conn := t.conn
		shut := make(chan struct{})
		go func() { // crypto/tls may block up to 5 s sending close_notify
			defer close(shut)
			var tcp net.Conn = conn
			if tc, ok := conn.(*tls.Conn); ok {
				_ = tc.CloseWrite()
				tcp = tc.NetConn()
			}
			if cw, ok := tcp.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
		}()
		timer := time.NewTimer(closeWait)
		select {
		case <-w.done:
		case <-timer.C:
		}
		timer.Stop()
		t.abort() // also ends a close_notify still blocked
		<-shut
		return
	}
	t.abort()
}

// closeWait bounds how long close waits for a peer to close its side.
const closeWait = 2 * time.Second

// watcher reads and discards what the peer of a stream connection sends,
// on its own goroutine, until the connection ends. Syslog receivers send
// nothing but TLS post-handshake messages (session tickets, key updates,
// alerts); reading them keeps the receive buffer empty — a socket closed
// with unread data sends a reset, which discards what it had not sent yet
// — and it notices when the peer closes or resets the connection, or
// refuses it with a TLS alert. The goroutine ends when the connection is
// closed.
type watcher struct {
	done chan struct{} // closed when the reader has ended
	err  error         // why it ended (io.EOF: the peer closed); read after done
}

func watch(c net.Conn) *watcher {
	w := &watcher{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var buf [512]byte
		for {
			if _, err := c.Read(buf[:]); err != nil {
				w.err = err
				return
			}
		}
	}()
	return w
}

// finReceived reports whether the kernel already holds the end of the
// peer's stream (a FIN with nothing unread before it, or a reset) that
// the connection's watcher has not read yet: a MSG_PEEK|MSG_DONTWAIT
// receive, through Control so as not to wait for the watcher's read.
// Pending data (a TLS session ticket) is for the watcher and means open.
func finReceived(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	err = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, rerr := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		closed = (rerr == nil && n == 0) || (rerr != nil && rerr != unix.EAGAIN && rerr != unix.EINTR)
	})
	return closed || err != nil
}

// ended reports, without waiting, whether the peer closed, reset or
// refused the connection (or it was closed).
func (w *watcher) ended() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// Close closes every connection, gracefully and in parallel (within
// closeWait).
func (o *output) Close() error {
	var wg sync.WaitGroup
	for _, t := range o.targets {
		wg.Go(t.close)
	}
	wg.Wait()
	return nil
}

// descs are one output's metric descriptions; the output name is a
// constant label, so several syslog outputs register side by side.
type descs struct {
	messages, bytes, connects, connectErrors, writeErrors, failovers, truncated, lfs *prometheus.Desc
}

func newDescs(name string) descs {
	l := prometheus.Labels{"output": name}
	t := []string{"target"}
	return descs{
		messages:      prometheus.NewDesc("sluice_syslog_out_messages_total", "Messages a syslog output handed to the kernel, by target.", t, l),
		bytes:         prometheus.NewDesc("sluice_syslog_out_bytes_total", "Bytes (framing included) a syslog output handed to the kernel, by target.", t, l),
		connects:      prometheus.NewDesc("sluice_syslog_out_connects_total", "Connections a syslog output opened, by target.", t, l),
		connectErrors: prometheus.NewDesc("sluice_syslog_out_connect_errors_total", "Failed connects (and TLS handshakes) of a syslog output, by target.", t, l),
		writeErrors:   prometheus.NewDesc("sluice_syslog_out_target_failures_total", "Batches a target failed (connect or write); the batch went to the next target or was retried.", t, l),
		failovers:     prometheus.NewDesc("sluice_syslog_out_failovers_total", "Times a syslog output with several targets moved a batch on from a failed target.", nil, l),
		truncated:     prometheus.NewDesc("sluice_syslog_out_truncated_total", "UDP messages cut to max_datagram_bytes.", nil, l),
		lfs:           prometheus.NewDesc("sluice_syslog_out_newlines_replaced_total", "Line feeds inside messages sent as spaces under framing = \"newline\".", nil, l),
	}
}

// Describe implements prometheus.Collector.
func (o *output) Describe(ch chan<- *prometheus.Desc) {
	d := o.descs
	for _, d := range []*prometheus.Desc{d.messages, d.bytes, d.connects, d.connectErrors, d.writeErrors, d.failovers, d.truncated, d.lfs} {
		ch <- d
	}
	if o.expiry != nil {
		o.expiry.Describe(ch)
	}
}

// Collect implements prometheus.Collector; safe concurrently with Write.
func (o *output) Collect(ch chan<- prometheus.Metric) {
	for _, t := range o.targets {
		for _, m := range []struct {
			d *prometheus.Desc
			v uint64
		}{{o.descs.messages, t.messages.Load()}, {o.descs.bytes, t.bytes.Load()}, {o.descs.connects, t.connects.Load()},
			{o.descs.connectErrors, t.connectErrors.Load()}, {o.descs.writeErrors, t.writeErrors.Load()}} {
			ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v), t.spec)
		}
	}
	ch <- prometheus.MustNewConstMetric(o.descs.failovers, prometheus.CounterValue, float64(o.failovers.Load()))
	ch <- prometheus.MustNewConstMetric(o.descs.truncated, prometheus.CounterValue, float64(o.truncated.Load()))
	ch <- prometheus.MustNewConstMetric(o.descs.lfs, prometheus.CounterValue, float64(o.lfs.Load()))
	if o.expiry != nil {
		o.expiry.Collect(ch)
	}
}
