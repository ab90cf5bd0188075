package syslogout

import (
	"strconv"

	"github.com/sluicelog/sluice/router/event"
)

// AppendRFC3164 appends ev as a BSD syslog line (RFC 3164 §4.1):
//
//	<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PROCID]: MSG
//
// PRI is ev.Priority(), or 13 (user.notice) when the facility or severity
// is unknown or out of range. The timestamp is ev.Time in its own location
// (RFC 3164 has no zone or year; the day is space-padded). HOSTNAME is
// ev.Host, "-" when empty. TAG is ev.App cut at the first character that
// is not printable ASCII or is one of " :[]", at most 32 bytes; without an
// app the "TAG[PROCID]: " part is left out. PROCID is included only when
// set. MSG is ev.Message as is (structured data is not carried). No
// trailing newline.
func AppendRFC3164(dst []byte, ev *event.Event) []byte {
	pri := ev.Priority()
	if pri < 0 || pri > 191 {
		pri = 13
	}
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(pri), 10)
	dst = append(dst, '>')
	t := ev.Time
	if t.IsZero() {
		t = ev.Received
	}
	dst = append(dst, t.Month().String()[:3]...)
	dst = append(dst, ' ')
	if d := t.Day(); d < 10 {
		dst = append(dst, ' ', byte('0'+d))
	} else {
		dst = strconv.AppendInt(dst, int64(d), 10)
	}
	dst = append(dst, ' ')
	dst = append2(dst, t.Hour())
	dst = append(dst, ':')
	dst = append2(dst, t.Minute())
	dst = append(dst, ':')
	dst = append2(dst, t.Second())
	dst = append(dst, ' ')
	dst = appendToken(dst, ev.Host, 255, "-")
	dst = append(dst, ' ')
	if tag := token(ev.App, 32); tag != "" {
		dst = append(dst, tag...)
		if pid := token(ev.ProcID, 128); pid != "" {
			dst = append(dst, '[')
			dst = append(dst, pid...)
			dst = append(dst, ']')
		}
		dst = append(dst, ':', ' ')
	}
	return append(dst, ev.Message...)
}

func append2(dst []byte, n int) []byte {
	return append(dst, byte('0'+n/10), byte('0'+n%10))
}

// token returns the prefix of s up to the first byte that is not printable
// ASCII or is a space, ':', '[' or ']', at most max bytes.
func token(s string, max int) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == max || c <= ' ' || c > '~' || c == ':' || c == '[' || c == ']' {
			return s[:i]
		}
	}
	return s
}

func appendToken(dst []byte, s string, max int, empty string) []byte {
	if t := token(s, max); t != "" {
		return append(dst, t...)
	}
	return append(dst, empty...)
}
