package syslog

import "net/netip"

// maxPeers bounds a peerCache; it is emptied when full.
const maxPeers = 4096

// peerCache remembers the Origin and Host strings of recent UDP senders,
// so a busy sender costs no string allocation per datagram. One per
// reading goroutine; not safe for concurrent use.
type peerCache struct {
	m map[netip.AddrPort]peerNames
}

type peerNames struct{ origin, host string }

// lookup returns the "ip:port" and "ip" strings of ap.
func (p *peerCache) lookup(ap netip.AddrPort) (origin, host string) {
	if n, ok := p.m[ap]; ok {
		return n.origin, n.host
	}
	if p.m == nil || len(p.m) >= maxPeers {
		p.m = make(map[netip.AddrPort]peerNames)
	}
	n := peerNames{origin: ap.String(), host: ap.Addr().String()}
	p.m[ap] = n
	return n.origin, n.host
}
