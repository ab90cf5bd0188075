package rules

import (
	"net/netip"
	"strings"
)

// parseOrigin extracts the IP address from an origin: "ip:port",
// "[ipv6]:port", or a bare IPv4 or IPv6 address (an IPv6 zone is dropped).
// It accepts exactly what netip.ParseAddrPort, then netip.ParseAddr, accept,
// but never allocates (netip allocates its errors, and most origins that are
// file paths would fail). Anything else, such as a file path, gives false.
func parseOrigin(s string) (netip.Addr, bool) {
	if i := strings.LastIndexByte(s, ':'); i > 0 && i < len(s)-1 && validPort(s[i+1:]) {
		host := s[:i]
		if host[0] == '[' {
			if len(host) >= 2 && host[len(host)-1] == ']' {
				if a, ok := parseIP(host[1 : len(host)-1]); ok && a.Is6() {
					return a, true
				}
			}
		} else if a, ok := parseIP(host); ok && a.Is4() {
			return a, true
		}
	}
	return parseIP(s)
}

// validPort reports whether s is a decimal number below 65536 (leading
// zeros allowed, like strconv.ParseUint).
func validPort(s string) bool {
	if s == "" {
		return false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		v = v*10 + int(c-'0')
		if v > 65535 {
			return false
		}
	}
	return true
}

// parseIP is netip.ParseAddr without allocation; the zone is dropped.
func parseIP(s string) (netip.Addr, bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.':
			var f [4]byte
			if !parseIPv4Fields(s, f[:]) {
				return netip.Addr{}, false
			}
			return netip.AddrFrom4(f), true
		case ':':
			return parseIPv6(s)
		case '%':
			return netip.Addr{}, false
		}
	}
	return netip.Addr{}, false
}

// parseIPv4Fields parses dotted-quad s into f (len 4), with the rules of
// net/netip: 1-3 digits per field, no leading zeros, each <= 255.
func parseIPv4Fields(s string, f []byte) bool {
	val, pos, digits := 0, 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if digits == 1 && val == 0 {
				return false
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return false
			}
		case c == '.':
			if i == 0 || i == len(s)-1 || s[i-1] == '.' || pos == 3 {
				return false
			}
			f[pos] = byte(val)
			pos++
			val, digits = 0, 0
		default:
			return false
		}
	}
	if pos < 3 {
		return false
	}
	f[3] = byte(val)
	return true
}

// parseIPv6 follows net/netip's parseIPv6, returning false instead of an
// error, and drops the zone.
func parseIPv6(s string) (netip.Addr, bool) {
	if i := strings.IndexByte(s, '%'); i >= 0 {
		if i == len(s)-1 {
			return netip.Addr{}, false // empty zone
		}
		s = s[:i]
	}
	var ip [16]byte
	ellipsis := -1
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis = 0
		s = s[2:]
		if len(s) == 0 {
			return netip.IPv6Unspecified(), true
		}
	}
	i := 0
	for i < 16 {
		off, acc := 0, uint32(0)
	hex:
		for ; off < len(s); off++ {
			c := s[off]
			switch {
			case c >= '0' && c <= '9':
				acc = acc<<4 + uint32(c-'0')
			case c >= 'a' && c <= 'f':
				acc = acc<<4 + uint32(c-'a'+10)
			case c >= 'A' && c <= 'F':
				acc = acc<<4 + uint32(c-'A'+10)
			default:
				break hex
			}
			if off > 3 || acc > 0xffff {
				return netip.Addr{}, false
			}
		}
		if off == 0 {
			return netip.Addr{}, false
		}
		if off < len(s) && s[off] == '.' {
			// Embedded IPv4 in the last 32 bits.
			if (ellipsis < 0 && i != 12) || i+4 > 16 {
				return netip.Addr{}, false
			}
			if !parseIPv4Fields(s, ip[i:i+4]) {
				return netip.Addr{}, false
			}
			s = ""
			i += 4
			break
		}
		ip[i] = byte(acc >> 8)
		ip[i+1] = byte(acc)
		i += 2
		s = s[off:]
		if len(s) == 0 {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return netip.Addr{}, false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = i
			s = s[1:]
			if len(s) == 0 {
				break
			}
		}
	}
	if len(s) != 0 {
		return netip.Addr{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		n := 16 - i
		for j := i - 1; j >= ellipsis; j-- {
			ip[j+n] = ip[j]
		}
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16(ip), true
}

// parseIPv4Origin is the fast path of parseOrigin for "a.b.c.d" and
// "a.b.c.d:port": it returns the address as a big-endian uint32. It returns
// false for everything else, including IPv6 forms.
func parseIPv4Origin(s string) (uint32, bool) {
	var ip uint32
	val, pos, digits := uint32(0), 0, 0
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			if digits == 1 && val == 0 {
				return 0, false
			}
			val = val*10 + uint32(c-'0')
			digits++
			if val > 255 {
				return 0, false
			}
			continue
		}
		if c != '.' || digits == 0 || pos == 3 {
			break
		}
		ip = ip<<8 | val
		pos++
		val, digits = 0, 0
	}
	if pos != 3 || digits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] != ':' || !validPort(s[i+1:])) {
		return 0, false
	}
	return ip<<8 | val, true
}
