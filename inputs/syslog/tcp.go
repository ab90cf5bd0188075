package syslog

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/sluicelog/sluice/inputs"
)

// connSet tracks the open TCP connections of an input, enforces
// max_connections and closes them all at shutdown.
type connSet struct {
	mu     sync.Mutex
	m      map[net.Conn]struct{}
	max    int
	closed bool
}

// add admits c. It returns false with full set when the input is at
// max_connections, false with full unset after closeAll.
func (s *connSet) add(c net.Conn) (ok, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, false
	}
	if len(s.m) >= s.max {
		return false, true
	}
	s.m[c] = struct{}{}
	return true, false
}

func (s *connSet) remove(c net.Conn) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

// closeAll closes every connection and refuses new ones.
func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.m {
		_ = c.Close()
	}
}

// acceptLoop accepts connections on l until it is closed, starting one
// serveConn goroutine per admitted connection (counted in wg). The TLS
// handshake of a tls:// listener's connection is done on that goroutine,
// so a slow or silent client never holds up the loop.
func (in *Input) acceptLoop(ctx context.Context, l listener, conns *connSet, sink inputs.Sink, wg *sync.WaitGroup) {
	ln := l.ln
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			// EMFILE, ENFILE, ECONNABORTED…: wait a little and retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			in.warn("accept", "accept failed; retrying", "addr", ln.Addr().String(), "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		ok, full := conns.add(c)
		if !ok {
			if full {
				// Count before closing, so a peer that sees the close sees the count.
				in.metrics.Dropped.WithLabelValues("max_connections").Inc()
				in.warn("max_connections", "too many connections; closing new ones",
					"max_connections", in.s.maxConns, "peer", c.RemoteAddr().String())
			}
			_ = c.Close()
			continue
		}
		in.metrics.Connections.Inc()
		wg.Go(func() {
			defer func() {
				conns.remove(c)
				_ = c.Close()
				in.metrics.Connections.Dec()
			}()
			if l.tls == nil {
				in.serveConn(ctx, c, sink)
				return
			}
			tc := in.handshake(ctx, c, l.tls)
			if tc == nil {
				return
			}
			// Closing the TLS connection first answers the client's
			// close_notify (RFC 5425 section 4.4); the raw Close above is
			// then a no-op.
			defer func() { _ = tc.Close() }()
			in.serveConn(ctx, tc, sink)
		})
	}
}

// connReader arms the idle timeout before every read.
type connReader struct {
	c    net.Conn
	idle time.Duration
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.idle > 0 {
		if err := r.c.SetReadDeadline(time.Now().Add(r.idle)); err != nil {
			return 0, err
		}
	}
	return r.c.Read(p)
}

// serveConn reads frames from c until the peer closes it, it is idle too
// long, it sends something unframable, the sink refuses a batch or the
// input shuts down. The caller closes c.
func (in *Input) serveConn(ctx context.Context, c net.Conn, sink inputs.Sink) {
	origin := c.RemoteAddr().String()
	host := origin
	if h, _, err := net.SplitHostPort(origin); err == nil {
		host = h
	}
	log := in.log.With("peer", origin)
	log.Debug("connection opened", "local", c.LocalAddr().String())
	fr := newFramer(&connReader{c: c, idle: in.s.idle}, in.s.maxMsg, func(reason string) {
		in.metrics.Dropped.WithLabelValues(reason).Inc()
		switch reason {
		case dropOversize:
			in.warn("oversize", "frame longer than max_message_bytes dropped",
				"peer", origin, "max_message_bytes", in.s.maxMsg)
		case dropBadFrame:
			in.warn("bad_frame", "octet-counting length of more than 10 digits; closing connection", "peer", origin)
		default:
			log.Debug("frame dropped", "reason", reason)
		}
	})
	dec := newDecoder(in.s.format, in.s.loc, in.name, in.s.stream)
	// A failed Emit closes the connection: the reader may be waiting for
	// a peer with nothing more to say (the caller's Close is then a no-op).
	pipe := newEmitPipe(ctx, sink, in.metrics, func() { c.Close() })
	if err := in.readFrames(ctx, fr, dec, pipe, origin, host, log); err != nil {
		pipe.close()
		in.emitFailed(ctx, log, err)
		return
	}
	if err := pipe.close(); err != nil {
		in.emitFailed(ctx, log, err)
	}
}

// readFrames reads, parses and sends batches to pipe until the connection
// ends (nil: the caller closes the pipe and reports its error) or an Emit
// fails (that error).
func (in *Input) readFrames(ctx context.Context, fr *framer, dec *decoder, pipe *emitPipe, origin, host string, log *slog.Logger) error {
	var b batch
	for {
		frame, err := fr.next(b.len() == 0)
		if err == errWouldBlock {
			if err := pipe.send(&b, in.metrics); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			if ferr := pipe.send(&b, in.metrics); ferr != nil {
				return ferr
			}
			var ne net.Error
			switch {
			case err == io.EOF:
				log.Debug("connection closed by peer")
			case errors.Is(err, net.ErrClosed) || ctx.Err() != nil:
				// Shutting down.
			case errors.As(err, &ne) && ne.Timeout():
				log.Debug("idle connection closed", "idle_timeout", in.s.idle)
			case err == errBadFrame:
				// Logged by the drop callback.
			default:
				log.Debug("connection error", "err", err)
			}
			return nil
		}
		b.add(dec, frame, fr.readAt, origin, host)
		if b.full(in.s) {
			if err := pipe.send(&b, in.metrics); err != nil {
				return err
			}
		}
	}
}

// emitFailed logs a batch the sink refused (quietly during shutdown).
func (in *Input) emitFailed(ctx context.Context, log *slog.Logger, err error) {
	if ctx.Err() != nil || errors.Is(err, inputs.ErrClosed) {
		log.Debug("sink closed; dropping connection", "err", err)
		return
	}
	in.warn("emit", "sink refused events; closing", "err", err)
}
