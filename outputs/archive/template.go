package archive

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelog/sluice/router/event"
)

// field is an event field a path template can name in {braces}.
type field uint8

const (
	fieldStream field = iota
	fieldInput
	fieldHost
	fieldApp
	fieldFacility
	fieldSeverity
	fieldProcID
	fieldMsgID
	numFields
)

var fieldNames = [numFields]string{
	fieldStream: "stream", fieldInput: "input", fieldHost: "host", fieldApp: "app",
	fieldFacility: "facility", fieldSeverity: "severity", fieldProcID: "procid", fieldMsgID: "msgid",
}

// maxFieldLen caps one rendered placeholder value, in bytes, so that a file
// name component stays under the usual 255-byte limit.
const maxFieldLen = 128

// emptyField replaces an empty placeholder value (and an unknown facility or
// severity), mirroring the RFC 5424 NILVALUE.
const emptyField = "-"

// segment is one piece of a compiled template: a literal, a strftime
// directive (verb != 0) or a field placeholder.
type segment struct {
	lit   string
	verb  byte
	field field
	isFld bool
}

// template is a compiled path template.
type template struct {
	segs []segment
	// gran is the length in seconds of the local-time unit within which the
	// time directives render the same (1 for %S, 60 for %M, 3600 for %H,
	// 86400 for any date directive); 0 when the template uses no time.
	gran   int64
	fields [numFields]bool // which fields the template uses
	used   []field         // the same, as a list
}

// compileTemplate parses a path template: strftime directives %Y %m %d %H %M
// %S %j %y %% and {field} placeholders.
func compileTemplate(s string) (*template, error) {
	if s == "" {
		return nil, errors.New("must not be empty")
	}
	t := &template{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.segs = append(t.segs, segment{lit: lit.String()})
			lit.Reset()
		}
	}
	var errs []error
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			if i+1 == len(s) {
				errs = append(errs, errors.New("trailing % (write %% for a literal %)"))
				continue
			}
			i++
			v := s[i]
			var g int64
			switch v {
			case '%':
				lit.WriteByte('%')
				continue
			case 'Y', 'y', 'm', 'd', 'j':
				g = 86400
			case 'H':
				g = 3600
			case 'M':
				g = 60
			case 'S':
				g = 1
			default:
				errs = append(errs, fmt.Errorf("unknown directive %%%c (want %%Y %%m %%d %%H %%M %%S %%j %%y or %%%%)", v))
				continue
			}
			flush()
			t.segs = append(t.segs, segment{verb: v})
			if t.gran == 0 || g < t.gran {
				t.gran = g
			}
		case '{':
			end := strings.IndexByte(s[i+1:], '}')
			if end < 0 {
				errs = append(errs, errors.New("unterminated { placeholder"))
				i = len(s)
				continue
			}
			name := s[i+1 : i+1+end]
			i += end + 1
			f, ok := lookupField(name)
			if !ok {
				errs = append(errs, fmt.Errorf("unknown field {%s} (want one of {%s})", name, strings.Join(fieldNames[:], "}, {")))
				continue
			}
			flush()
			t.segs = append(t.segs, segment{field: f, isFld: true})
			if !t.fields[f] {
				t.fields[f] = true
				t.used = append(t.used, f)
			}
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	if strings.HasSuffix(s, "/") {
		errs = append(errs, errors.New("must name a file, not end in /"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("path template %q: %w", s, errors.Join(errs...))
	}
	return t, nil
}

func lookupField(name string) (field, bool) {
	for i, n := range fieldNames {
		if n == name {
			return field(i), true
		}
	}
	return 0, false
}

// fieldValue returns the raw (unsanitized) value of f in ev.
func fieldValue(ev *event.Event, f field) string {
	switch f {
	case fieldStream:
		return ev.Stream
	case fieldInput:
		return ev.Input
	case fieldHost:
		return ev.Host
	case fieldApp:
		return ev.App
	case fieldFacility:
		if ev.Facility < 0 || ev.Facility > 23 {
			return ""
		}
		return ev.Facility.String()
	case fieldSeverity:
		if ev.Severity < 0 || ev.Severity > 7 {
			return ""
		}
		return ev.Severity.String()
	case fieldProcID:
		return ev.ProcID
	case fieldMsgID:
		return ev.MsgID
	}
	return ""
}

// render appends the path for ev, with its time in loc, to dst.
func (t *template) render(dst []byte, ev *event.Event, loc *time.Location) []byte {
	var (
		year, yday, hour, min, sec int
		month                      time.Month
		day                        int
	)
	if t.gran != 0 {
		tl := ev.Time.In(loc)
		year, month, day = tl.Date()
		hour, min, sec = tl.Clock()
		yday = tl.YearDay()
	}
	for i := range t.segs {
		s := &t.segs[i]
		switch {
		case s.isFld:
			dst = appendSanitized(dst, fieldValue(ev, s.field))
		case s.verb == 0:
			dst = append(dst, s.lit...)
		default:
			switch s.verb {
			case 'Y':
				dst = appendPadded(dst, year, 4)
			case 'y':
				dst = appendPadded(dst, ((year%100)+100)%100, 2)
			case 'm':
				dst = appendPadded(dst, int(month), 2)
			case 'd':
				dst = appendPadded(dst, day, 2)
			case 'j':
				dst = appendPadded(dst, yday, 3)
			case 'H':
				dst = appendPadded(dst, hour, 2)
			case 'M':
				dst = appendPadded(dst, min, 2)
			case 'S':
				dst = appendPadded(dst, sec, 2)
			}
		}
	}
	return dst
}

// appendPadded appends v in decimal, zero-padded to width digits.
func appendPadded(dst []byte, v, width int) []byte {
	if v < 0 {
		return strconv.AppendInt(dst, int64(v), 10)
	}
	for p, n := 10, 1; n < width; p, n = p*10, n+1 {
		if v < p {
			dst = append(dst, '0')
		}
	}
	return strconv.AppendInt(dst, int64(v), 10)
}

// appendSanitized appends a placeholder value made safe as (part of) one
// path component: empty becomes "-"; '/', NUL and other control bytes become
// '_'; a leading '.' becomes '_' (so neither "." nor ".." nor a hidden name
// can appear); the value is cut to maxFieldLen bytes at a UTF-8 boundary.
func appendSanitized(dst []byte, v string) []byte {
	if v == "" {
		return append(dst, emptyField...)
	}
	if len(v) > maxFieldLen {
		i := maxFieldLen
		for k := 0; k < 3 && i > 1 && v[i]&0xC0 == 0x80; k++ { // don't split a UTF-8 sequence
			i--
		}
		v = v[:i]
	}
	start := len(dst)
	dst = append(dst, v...)
	for i := start; i < len(dst); i++ {
		if c := dst[i]; c == '/' || c < 0x20 || c == 0x7f {
			dst[i] = '_'
		}
	}
	if dst[start] == '.' {
		dst[start] = '_'
	}
	return dst
}

// timeRange returns the interval [lo, hi) of Unix seconds around t within
// which the template's time directives render the same as for t.
func (t *template) timeRange(tm time.Time, loc *time.Location) (lo, hi int64) {
	if t.gran == 0 {
		return minInt64, maxInt64
	}
	tl := tm.In(loc)
	_, off := tl.Zone()
	u := tm.Unix()
	local := u + int64(off)
	rem := local % t.gran
	if rem < 0 {
		rem += t.gran
	}
	lo = u - rem
	hi = lo + t.gran
	// The arithmetic above assumes one UTC offset; clip to the period in
	// which the zone keeps this offset.
	zs, ze := tl.ZoneBounds()
	if !zs.IsZero() && zs.Unix() > lo {
		lo = zs.Unix()
	}
	if !ze.IsZero() && ze.Unix() < hi {
		hi = ze.Unix()
	}
	return lo, hi
}

const (
	minInt64 = -1 << 63
	maxInt64 = 1<<63 - 1
)

// maxComponent is the longest file name Linux filesystems accept.
const maxComponent = 255

// capComponents shortens every path component longer than maxComponent
// bytes in place: it keeps the first 200 bytes and the last 38 (so the
// extension survives) around "~" and 16 hex digits of a hash of the whole
// component, so distinct long names stay distinct. Placeholder values are
// capped at 128 bytes each, but several in one component can still exceed
// the limit.
func capComponents(p []byte) []byte {
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		if i-start > maxComponent {
			comp := p[start:i]
			h := fnv.New64a()
			h.Write(comp)
			var short []byte
			short = append(short, comp[:200]...)
			short = append(short, '~')
			short = fmt.Appendf(short, "%016x", h.Sum64())
			short = append(short, comp[len(comp)-38:]...)
			rest := append([]byte(nil), p[i:]...)
			p = append(append(p[:start], short...), rest...)
			i = start + len(short)
		}
		start = i + 1
	}
	return p
}
