//go:build linux

package syslog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sluicelog/sluice/inputs"
)

// udpVlen is the number of datagrams one recvmmsg call can return.
const udpVlen = 32

// listenUDP opens in.s.udpReaders sockets on la (SO_REUSEPORT when more
// than one, so the kernel spreads datagrams over them by sender), sets
// their receive buffers and logs the size granted.
func (in *Input) listenUDP(ctx context.Context, la listenAddr) ([]*net.UDPConn, error) {
	n := in.s.udpReaders
	var lc net.ListenConfig
	if n > 1 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("setting SO_REUSEPORT: %w", serr)
			}
			return nil
		}
	}
	var socks []*net.UDPConn
	fail := func(err error) ([]*net.UDPConn, error) {
		for _, c := range socks {
			_ = c.Close()
		}
		return nil, err
	}
	addr := la.address
	for i := range n {
		pc, err := lc.ListenPacket(ctx, la.network, addr)
		if err != nil {
			return fail(err)
		}
		uc, ok := pc.(*net.UDPConn)
		if !ok {
			_ = pc.Close()
			return fail(fmt.Errorf("unexpected socket type %T", pc))
		}
		socks = append(socks, uc)
		if i == 0 {
			// With port 0 the other sockets must join the port chosen.
			host, _, _ := net.SplitHostPort(la.address)
			addr = net.JoinHostPort(host, strconv.Itoa(uc.LocalAddr().(*net.UDPAddr).Port))
		}
	}
	granted, forced := -1, false
	for _, uc := range socks {
		g, f, err := setRcvBuf(uc, in.s.udpBuf)
		if err != nil {
			return fail(fmt.Errorf("setting the receive buffer: %w", err))
		}
		granted, forced = g, f
	}
	in.log.Info("listening", "transport", "udp", "addr", socks[0].LocalAddr().String(), "sockets", n,
		"rcvbuf_requested", in.s.udpBuf, "rcvbuf_granted", granted, "rcvbuf_forced", forced)
	// The kernel reports twice the size set (it counts its bookkeeping).
	if in.s.udpBuf > 0 && granted < in.s.udpBuf {
		in.log.Warn("UDP receive buffer smaller than requested; raise net.core.rmem_max or grant CAP_NET_ADMIN",
			"addr", socks[0].LocalAddr().String(), "requested", in.s.udpBuf, "granted", granted)
	}
	return socks, nil
}

// setRcvBuf sets SO_RCVBUFFORCE (needs CAP_NET_ADMIN) or else SO_RCVBUF
// to size (0: leave the default), and returns the size read back.
func setRcvBuf(c *net.UDPConn, size int) (granted int, forced bool, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		if size > 0 {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) == nil {
				forced = true
			} else if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, size); e != nil {
				serr = e
				return
			}
		}
		granted, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	if cerr != nil {
		return 0, false, cerr
	}
	return granted, forced, serr
}

// mmsghdr is struct mmsghdr of <sys/socket.h>.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// udpBatchReader receives up to udpVlen datagrams per recvmmsg call into
// fixed slots of one buffer. Pages of a slot are touched only as far as
// datagrams reach, so small datagrams keep the resident size small.
type udpBatchReader struct {
	slot  int
	buf   []byte
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for IPv4 and IPv6
	hdrs  []mmsghdr
}

func newUDPBatchReader(maxMsg int) *udpBatchReader {
	// One byte more than the limit tells an oversize datagram apart; UDP
	// payloads never exceed 65535 bytes.
	slot := min(maxMsg, 65535) + 1
	r := &udpBatchReader{
		slot:  slot,
		buf:   make([]byte, slot*udpVlen),
		iovs:  make([]unix.Iovec, udpVlen),
		names: make([]unix.RawSockaddrInet6, udpVlen),
		hdrs:  make([]mmsghdr, udpVlen),
	}
	for i := range r.hdrs {
		r.iovs[i].Base = &r.buf[i*slot]
		r.iovs[i].SetLen(slot)
		h := &r.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
	}
	return r
}

// recv performs one non-blocking recvmmsg on fd. It returns the number of
// datagrams received and the errno (EAGAIN when none is pending).
func (r *udpBatchReader) recv(fd uintptr) (int, syscall.Errno) {
	for i := range r.hdrs {
		r.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet6
		r.hdrs[i].hdr.Flags = 0
		r.hdrs[i].n = 0
	}
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])),
			uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), 0
	}
}

// datagram returns datagram i of the last recv, its length as received
// (more than the slot holds when it was truncated) and its sender.
func (r *udpBatchReader) datagram(i int) ([]byte, int, netip.AddrPort) {
	n := int(r.hdrs[i].n)
	if r.hdrs[i].hdr.Flags&unix.MSG_TRUNC != 0 {
		n = max(n, r.slot+1)
	}
	b := r.buf[i*r.slot : i*r.slot+min(n, r.slot)]
	return b, n, sockaddrAddrPort(&r.names[i])
}

func sockaddrAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		p := (*[2]byte)(unsafe.Pointer(&sa4.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// readUDP reads datagrams from c until it is closed: one event per
// datagram, emitted in batches of what is immediately available.
func (in *Input) readUDP(ctx context.Context, c *net.UDPConn, sink inputs.Sink) {
	rc, err := c.SyscallConn()
	if err != nil {
		in.log.Error("UDP socket unusable", "addr", c.LocalAddr().String(), "err", err)
		return
	}
	r := newUDPBatchReader(in.s.maxMsg)
	dec := newDecoder(in.s.format, in.s.loc, in.name, in.s.stream)
	var peers peerCache
	var b batch
	oversize := in.metrics.Dropped.WithLabelValues(dropOversize)
	for {
		var n int
		var errno syscall.Errno
		err := rc.Read(func(fd uintptr) bool {
			n, errno = r.recv(fd)
			if errno == unix.EAGAIN || errno == unix.EWOULDBLOCK {
				errno = 0
				return b.len() > 0 // nothing pending: emit what we have, or wait
			}
			return true
		})
		if err != nil {
			// The socket was closed: shutting down.
			_ = b.flush(ctx, sink, in.metrics)
			return
		}
		if errno != 0 {
			in.warn("udp_read", "UDP receive failed", "addr", c.LocalAddr().String(), "err", errno)
			if ctx.Err() != nil {
				return
			}
			time.Sleep(10 * time.Millisecond) // don't spin on a persistent error
			continue
		}
		if n > 0 {
			now := time.Now()
			for i := range n {
				d, size, from := r.datagram(i)
				if size > in.s.maxMsg {
					oversize.Inc()
					in.warn("oversize", "datagram longer than max_message_bytes dropped",
						"peer", from.String(), "max_message_bytes", in.s.maxMsg)
					continue
				}
				if d = trimTrailer(d); len(d) == 0 {
					continue
				}
				origin, host := peers.lookup(from)
				b.add(dec, d, now, origin, host)
			}
			if !b.full(in.s) {
				continue
			}
		}
		if err := b.flush(ctx, sink, in.metrics); err != nil {
			if ctx.Err() != nil || errors.Is(err, inputs.ErrClosed) {
				return
			}
			in.warn("emit", "sink refused events", "err", err)
		}
	}
}
