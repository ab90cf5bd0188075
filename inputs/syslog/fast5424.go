package syslog

import (
	"bytes"
	"time"
	"unicode/utf8"

	"github.com/sluicelog/sluice/router/event"
)

// fast5424 is a strict, zero-copy parser for well-formed RFC 5424 messages,
// the common case on a busy link. go-syslog's machine costs about 2 µs and
// 16 allocations per ~250-byte message on this hardware (its Parse was 47%
// of the daemon's CPU end to end); this costs a fraction of that, and its
// strings alias the event's immutable Raw bytes instead of copying them.
//
// It accepts only what it can parse exactly as go-syslog's strict RFC 5424
// machine would, and returns false for everything else — any deviation,
// a BOM before MSG, an escape it would have to interpret differently,
// duplicate SD-IDs or parameters, a leap second — so the caller falls back
// to go-syslog, whose result stays the reference. FuzzFast5424MatchesGoSyslog
// holds it to that: whenever fast5424 accepts a frame, go-syslog accepts it
// too with identical fields.
//
// frame must be the event's own Raw (strings point into it). st belongs to
// the calling decoder (one per goroutine).
func fast5424(ev *event.Event, frame []byte, st *fastState) bool {
	p := frame
	// PRI: "<" 1-3 digits ">" with no leading zero, at most 191.
	if len(p) < 5 || p[0] != '<' {
		return false
	}
	i, pri := 1, 0
	for ; i < len(p) && i <= 4 && isDigit(p[i]); i++ {
		pri = pri*10 + int(p[i]-'0')
	}
	if i == 1 || i > 4 || i >= len(p) || p[i] != '>' || pri > 191 || (p[1] == '0' && i > 2) {
		return false
	}
	p = p[i+1:]
	// VERSION "1" SP.
	if len(p) < 2 || p[0] != '1' || p[1] != ' ' {
		return false
	}
	p = p[2:]
	// TIMESTAMP SP.
	var ts time.Time
	if len(p) >= 2 && p[0] == '-' && p[1] == ' ' {
		p = p[2:]
	} else {
		sp := bytes.IndexByte(p, ' ')
		if sp < 0 {
			return false
		}
		var ok bool
		if ts, ok = parseStamp5424(p[:sp], st.zones); !ok {
			return false
		}
		p = p[sp+1:]
	}
	var host, app, procid, msgid string
	var ok bool
	if host, p, ok = headerField(p, 255); !ok {
		return false
	}
	if app, p, ok = headerField(p, 48); !ok {
		return false
	}
	if procid, p, ok = headerField(p, 128); !ok {
		return false
	}
	if msgid, p, ok = headerField(p, 32); !ok {
		return false
	}
	// STRUCTURED-DATA.
	if len(p) == 0 {
		return false
	}
	hasSD := p[0] != '-'
	if hasSD {
		if p, ok = st.parseSD(p); !ok {
			return false
		}
	} else {
		p = p[1:]
	}
	// [SP MSG]
	var msg string
	if len(p) > 0 {
		if p[0] != ' ' {
			return false
		}
		p = p[1:]
		if len(p) >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF {
			return false // BOM: leave it to go-syslog
		}
		msg = bytesString(p)
	}
	ev.Facility, ev.Severity = event.Facility(pri/8), event.Severity(pri%8)
	if !ts.IsZero() {
		ev.Time = ts
	}
	ev.Host, ev.App, ev.ProcID, ev.MsgID = host, app, procid, msgid
	ev.SD = nil
	if hasSD {
		ev.SD = st.takeSD()
	}
	ev.Message = msg
	return true
}

// headerField reads NILVALUE or 1..max PRINTUSASCII characters followed by
// SP; NILVALUE gives "".
func headerField(p []byte, max int) (string, []byte, bool) {
	i := 0
	for i < len(p) && i <= max && p[i] != ' ' {
		if p[i] < 33 || p[i] > 126 {
			return "", nil, false
		}
		i++
	}
	if i == 0 || i > max || i >= len(p) {
		return "", nil, false
	}
	if i == 1 && p[0] == '-' {
		return "", p[2:], true
	}
	return bytesString(p[:i]), p[i+1:], true
}

// fastState is the per-decoder memory of fast5424: the offset → zone cache,
// scratch space for the SD being parsed, and the slabs finished SD is
// carved from. Slab slots are never written again once handed to an event.
type fastState struct {
	zones map[int]*time.Location

	ids    []string // scratch: SD-IDs of the message being parsed
	ranges [][2]int // scratch: each element's params as params[a:b]
	params []event.SDParam

	elSlab []event.SDElement
	pSlab  []event.SDParam
}

const sdSlabLen = 256

func newFastState() *fastState {
	return &fastState{zones: map[int]*time.Location{}}
}

// parseSD reads one or more SD-ELEMENTs into the scratch space. Values
// without escapes alias p; values with escapes ("\"", "\\", "\]") are
// unescaped into new strings. Duplicate SD-IDs or parameter names are left
// to the fallback parser (whose map form cannot hold them).
func (st *fastState) parseSD(p []byte) ([]byte, bool) {
	st.ids, st.ranges, st.params = st.ids[:0], st.ranges[:0], st.params[:0]
	if len(p) == 0 || p[0] != '[' {
		return nil, false // neither NILVALUE nor an SD-ELEMENT
	}
	for len(p) > 0 && p[0] == '[' {
		p = p[1:]
		id, rest, ok := sdName(p)
		if !ok {
			return nil, false
		}
		for _, prev := range st.ids {
			if prev == id {
				return nil, false
			}
		}
		p = rest
		first := len(st.params)
		for {
			if len(p) == 0 {
				return nil, false
			}
			if p[0] == ']' {
				p = p[1:]
				break
			}
			if p[0] != ' ' {
				return nil, false
			}
			p = p[1:]
			name, rest, ok := sdName(p)
			if !ok || len(rest) < 2 || rest[0] != '=' || rest[1] != '"' {
				return nil, false
			}
			for _, prev := range st.params[first:] {
				if prev.Name == name {
					return nil, false
				}
			}
			p = rest[2:]
			val, rest, ok := sdValue(p)
			if !ok {
				return nil, false
			}
			st.params = append(st.params, event.SDParam{Name: name, Value: val})
			p = rest
		}
		st.ids = append(st.ids, id)
		st.ranges = append(st.ranges, [2]int{first, len(st.params)})
	}
	return p, true
}

// takeSD copies the parsed SD out of the scratch space into slab memory.
func (st *fastState) takeSD() event.StructuredData {
	n, m := len(st.ids), len(st.params)
	if len(st.elSlab)+n > cap(st.elSlab) {
		st.elSlab = make([]event.SDElement, 0, max(sdSlabLen, n))
	}
	if len(st.pSlab)+m > cap(st.pSlab) {
		st.pSlab = make([]event.SDParam, 0, max(sdSlabLen, m))
	}
	e0, p0 := len(st.elSlab), len(st.pSlab)
	st.elSlab = st.elSlab[:e0+n]
	st.pSlab = append(st.pSlab, st.params...)
	els := st.elSlab[e0 : e0+n : e0+n]
	ps := st.pSlab[p0 : p0+m : p0+m]
	for i, id := range st.ids {
		r := st.ranges[i]
		els[i] = event.SDElement{ID: id, Params: ps[r[0]:r[1]:r[1]]}
	}
	return event.StructuredData(els)
}

// sdName reads 1..32 PRINTUSASCII characters other than '=', ' ', ']' and '"'.
func sdName(p []byte) (string, []byte, bool) {
	i := 0
	for i < len(p) && i <= 32 {
		c := p[i]
		if c == '=' || c == ' ' || c == ']' || c == '"' {
			break
		}
		if c < 33 || c > 126 {
			return "", nil, false
		}
		i++
	}
	if i == 0 || i > 32 {
		return "", nil, false
	}
	return bytesString(p[:i]), p[i:], true
}

// sdValue reads a PARAM-VALUE up to its closing quote. Only the escapes
// RFC 5424 defines are accepted; any other backslash, or an unescaped ']',
// goes to the fallback parser.
func sdValue(p []byte) (string, []byte, bool) {
	escaped := false
	i := 0
	for ; i < len(p); i++ {
		switch p[i] {
		case '"':
			v := p[:i]
			if !utf8.Valid(v) { // RFC 5424: PARAM-VALUE is UTF-8
				return "", nil, false
			}
			if !escaped {
				return bytesString(v), p[i+1:], true
			}
			out := make([]byte, 0, len(v))
			for j := 0; j < len(v); j++ {
				if v[j] == '\\' {
					j++
				}
				out = append(out, v[j])
			}
			return string(out), p[i+1:], true
		case '\\':
			if i+1 >= len(p) || (p[i+1] != '"' && p[i+1] != '\\' && p[i+1] != ']') {
				return "", nil, false
			}
			escaped = true
			i++
		case ']':
			return "", nil, false
		}
	}
	return "", nil, false
}

// parseStamp5424 parses FULL-DATE "T" FULL-TIME with 0-6 fraction digits
// and "Z" or a numeric offset.
func parseStamp5424(b []byte, zones map[int]*time.Location) (time.Time, bool) {
	// 2006-01-02T15:04:05 is 19 bytes; then [.frac] then Z or ±hh:mm.
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	num := func(s []byte) (int, bool) {
		v := 0
		for _, c := range s {
			if !isDigit(c) {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := num(b[0:4])
	month, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hour, ok4 := num(b[11:13])
	minute, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > 31 ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	rest := b[19:]
	nsec := 0
	if rest[0] == '.' {
		j := 1
		for j < len(rest) && isDigit(rest[j]) {
			j++
		}
		digits := j - 1
		if digits < 1 || digits > 6 {
			return time.Time{}, false
		}
		f, _ := num(rest[1:j])
		for k := digits; k < 9; k++ {
			f *= 10
		}
		nsec = f
		rest = rest[j:]
	}
	var loc *time.Location
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
		loc = time.UTC
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := num(rest[1:3])
		om, ok2 := num(rest[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		off := oh*3600 + om*60
		if rest[0] == '-' {
			off = -off
		}
		if loc = zones[off]; loc == nil {
			if len(zones) >= 64 {
				clear(zones) // bounded: a hostile sender cannot grow it
			}
			loc = time.FixedZone("", off)
			zones[off] = loc
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if t.Day() != day { // 31 April and the like
		return time.Time{}, false
	}
	return t, true
}
