package format

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sluicelog/sluice/router/event"
)

// RFC 5424 header field limits (section 6).
const (
	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
	maxMsgID    = 32
	maxSDName   = 32
)

// defaultPRI is user.notice, what RFC 5424 (and RFC 3164) assume for a
// message without a usable priority.
const defaultPRI = 13

// rfc5424Time is RFC 3339 with microseconds, the TIME-SECFRAC maximum.
const rfc5424Time = "2006-01-02T15:04:05.000000Z07:00"

func appendRFC5424(dst []byte, ev *event.Event) []byte {
	pri := defaultPRI
	if ev.Facility >= 0 && ev.Facility <= 23 && ev.Severity >= 0 && ev.Severity <= 7 {
		pri = int(ev.Facility)*8 + int(ev.Severity)
	}
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(pri), 10)
	dst = append(dst, ">1 "...)
	dst = appendRFC5424Time(dst, ev.Time)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, ev.Host, maxHostname)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, ev.App, maxAppName)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, ev.ProcID, maxProcID)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, ev.MsgID, maxMsgID)
	dst = append(dst, ' ')
	dst = appendSD(dst, ev.SD)
	if ev.Message != "" {
		dst = append(dst, ' ')
		dst = append(dst, ev.Message...)
	}
	return dst
}

func appendRFC5424Time(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, '-')
	}
	if _, off := t.Zone(); off%60 != 0 {
		t = t.UTC()
	}
	if y := t.Year(); y < 0 || y > 9999 {
		return append(dst, '-')
	}
	return t.AppendFormat(dst, rfc5424Time)
}

// printASCII reports whether c is PRINTUSASCII (%d33-126).
func printASCII(c byte) bool { return c >= 33 && c <= 126 }

// appendHeaderField appends s as a 5424 header field: "-" when empty, at most
// max bytes, non-PRINTUSASCII bytes replaced by '_'.
func appendHeaderField(dst []byte, s string, max int) []byte {
	if s == "" {
		return append(dst, '-')
	}
	if len(s) > max {
		s = s[:max]
	}
	start := len(dst)
	dst = append(dst, s...)
	for i := start; i < len(dst); i++ {
		if !printASCII(dst[i]) {
			dst[i] = '_'
		}
	}
	return dst
}

// sdNameOK reports whether c may appear in an SD-NAME.
func sdNameOK(c byte) bool { return printASCII(c) && c != '=' && c != ']' && c != '"' }

// appendSDName appends s as an SD-NAME (SD-ID or PARAM-NAME).
func appendSDName(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, '_')
	}
	if len(s) > maxSDName {
		s = s[:maxSDName]
	}
	start := len(dst)
	dst = append(dst, s...)
	for i := start; i < len(dst); i++ {
		if !sdNameOK(dst[i]) {
			dst[i] = '_'
		}
	}
	return dst
}

// appendSD writes the elements in their order. RFC 5424 forbids the same
// SD-ID twice, so an element whose (cleaned) ID repeats an earlier one is
// left out; repeated parameter names are allowed and kept.
func appendSD(dst []byte, sd event.StructuredData) []byte {
	if len(sd) == 0 {
		return append(dst, '-')
	}
	for i := range sd {
		el := &sd[i]
		idStart := len(dst)
		dst = append(dst, '[')
		dst = appendSDName(dst, el.ID)
		if i > 0 && sdIDRepeats(dst[idStart+1:], sd[:i]) {
			dst = dst[:idStart]
			continue
		}
		for _, p := range el.Params {
			dst = append(dst, ' ')
			dst = appendSDName(dst, p.Name)
			dst = append(dst, '=', '"')
			dst = appendSDValue(dst, p.Value)
			dst = append(dst, '"')
		}
		dst = append(dst, ']')
	}
	return dst
}

// sdIDRepeats reports whether the cleaned SD-ID got equals the cleaned ID
// of any earlier element.
func sdIDRepeats(got []byte, earlier event.StructuredData) bool {
	var tmp [maxSDName + 1]byte
	for i := range earlier {
		if string(appendSDName(tmp[:0], earlier[i].ID)) == string(got) {
			return true
		}
	}
	return false
}

// appendSDValue appends v as a PARAM-VALUE: '"', '\' and ']' escaped,
// invalid UTF-8 replaced by U+FFFD.
func appendSDValue(dst []byte, v string) []byte {
	last := 0
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c == '"' || c == '\\' || c == ']' {
				dst = append(dst, v[last:i]...)
				dst = append(dst, '\\', c)
				last = i + 1
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, v[last:i]...)
			dst = utf8.AppendRune(dst, utf8.RuneError)
			last = i + 1
		}
		i += size
	}
	return append(dst, v[last:]...)
}
