package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"time"
)

// dropTLSHandshake is the Dropped reason of a TLS connection whose
// handshake failed.
const dropTLSHandshake = "tls_handshake"

// handshake runs the server side of a TLS handshake on c, bounded by the
// handshake timeout. It returns the TLS connection, or nil when the
// handshake failed (logged and, unless the peer just went away or the
// input is shutting down, counted as dropped); the caller closes c.
func (in *Input) handshake(ctx context.Context, c net.Conn, cfg *tls.Config) *tls.Conn {
	peer := c.RemoteAddr().String()
	tc := tls.Server(c, cfg)
	err := c.SetDeadline(time.Now().Add(in.s.handshake))
	if err == nil {
		err = tc.Handshake()
	}
	if err == nil {
		// Reads arm their own idle deadline; writes (alerts, close_notify)
		// are bounded by crypto/tls.
		err = c.SetDeadline(time.Time{})
	}
	if err == nil {
		if in.log.Enabled(ctx, slog.LevelDebug) {
			st := tc.ConnectionState()
			args := []any{"peer", peer, "version", tls.VersionName(st.Version), "cipher_suite", tls.CipherSuiteName(st.CipherSuite)}
			if len(st.PeerCertificates) > 0 {
				args = append(args, "client_subject", st.PeerCertificates[0].Subject.String())
			}
			in.log.Debug("TLS handshake done", args...)
		}
		return tc
	}
	var (
		ne  net.Error
		rhe tls.RecordHeaderError
	)
	switch {
	case ctx.Err() != nil || errors.Is(err, net.ErrClosed):
		// Shutting down.
		return nil
	case errors.Is(err, io.EOF):
		// Closed at a record boundary without an alert: a port probe or a
		// health check, or a client giving up. Nothing was lost.
		in.log.Debug("connection closed during the TLS handshake", "peer", peer)
		return nil
	case errors.As(err, &ne) && ne.Timeout():
		in.metrics.Dropped.WithLabelValues(dropTLSHandshake).Inc()
		in.handshakeFailed("TLS handshake timed out; closing", "peer", peer, "timeout", in.s.handshake)
	case errors.As(err, &rhe):
		in.metrics.Dropped.WithLabelValues(dropTLSHandshake).Inc()
		in.handshakeFailed("TLS handshake failed: the client does not speak TLS (plain-text syslog on a TLS port?); closing", "peer", peer, "err", err)
	default:
		in.metrics.Dropped.WithLabelValues(dropTLSHandshake).Inc()
		in.handshakeFailed("TLS handshake failed; closing", "peer", peer, "err", err)
	}
	return nil
}

// handshakeFailed logs a failed handshake at Warn level, rate-limited, and
// at Debug level when the warning is suppressed.
func (in *Input) handshakeFailed(msg string, args ...any) {
	if !in.warn(dropTLSHandshake, msg, args...) {
		in.log.Debug(msg, args...)
	}
}
