//go:build !linux

package syslog

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/sluicelog/sluice/inputs"
)

// listenUDP opens one socket on la (udp_readers is not honoured outside
// Linux) and requests the configured receive buffer.
func (in *Input) listenUDP(ctx context.Context, la listenAddr) ([]*net.UDPConn, error) {
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, la.network, la.address)
	if err != nil {
		return nil, err
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		_ = pc.Close()
		return nil, errors.New("unexpected socket type")
	}
	if in.s.udpBuf > 0 {
		if err := uc.SetReadBuffer(in.s.udpBuf); err != nil {
			in.log.Warn("setting the UDP receive buffer failed", "addr", uc.LocalAddr().String(), "err", err)
		}
	}
	in.log.Info("listening", "transport", "udp", "addr", uc.LocalAddr().String(), "rcvbuf_requested", in.s.udpBuf)
	return []*net.UDPConn{uc}, nil
}

// readUDP reads datagrams from c until it is closed, one event per
// datagram, one Emit per datagram.
func (in *Input) readUDP(ctx context.Context, c *net.UDPConn, sink inputs.Sink) {
	buf := make([]byte, min(in.s.maxMsg, 65535)+1)
	dec := newDecoder(in.s.format, in.s.loc, in.name, in.s.stream)
	var peers peerCache
	var b batch
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			in.warn("udp_read", "UDP receive failed", "addr", c.LocalAddr().String(), "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if n > in.s.maxMsg {
			in.metrics.Dropped.WithLabelValues(dropOversize).Inc()
			continue
		}
		d := trimTrailer(buf[:n])
		if len(d) == 0 {
			continue
		}
		origin, host := peers.lookup(from)
		b.add(dec, d, time.Now(), origin, host)
		if err := b.flush(ctx, sink, in.metrics); err != nil {
			if ctx.Err() != nil || errors.Is(err, inputs.ErrClosed) {
				return
			}
			in.warn("emit", "sink refused events", "err", err)
		}
	}
}
