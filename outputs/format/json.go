package format

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/sluicelog/sluice/router/event"
)

const hexDigits = "0123456789abcdef"

// jsonSafe[c] is true for ASCII bytes that go into a JSON string unescaped.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func appendJSON(dst []byte, ev *event.Event) []byte {
	dst = append(dst, `{"time":`...)
	dst = appendJSONTime(dst, ev.Time)
	dst = append(dst, `,"received":`...)
	dst = appendJSONTime(dst, ev.Received)
	dst = appendJSONField(dst, `,"input`, ev.Input)
	dst = appendJSONField(dst, `,"stream`, ev.Stream)
	dst = appendJSONField(dst, `,"origin`, ev.Origin)
	dst = append(dst, `,"facility":`...)
	if ev.Facility >= 0 && ev.Facility <= 23 {
		dst = append(dst, '"')
		dst = append(dst, ev.Facility.String()...)
		dst = append(dst, '"')
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"severity":`...)
	if ev.Severity >= 0 && ev.Severity <= 7 {
		dst = append(dst, '"')
		dst = append(dst, ev.Severity.String()...)
		dst = append(dst, '"')
	} else {
		dst = append(dst, "null"...)
	}
	dst = appendJSONField(dst, `,"host`, ev.Host)
	dst = appendJSONField(dst, `,"app`, ev.App)
	dst = appendJSONField(dst, `,"procid`, ev.ProcID)
	dst = appendJSONField(dst, `,"msgid`, ev.MsgID)
	dst = appendJSONField(dst, `,"message`, ev.Message)
	if ev.SD != nil {
		dst = appendJSONSD(dst, ev.SD)
	}
	dst = appendJSONField(dst, `,"raw`, ev.Raw)
	return append(dst, '}')
}

// appendJSONTime appends t as a quoted RFC 3339 UTC time with nanoseconds, or
// null if it cannot be written in that form.
func appendJSONTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// appendJSONField appends `key":"value"` where key starts with `,"`, or
// `key_base64":"…"` when value is not valid UTF-8.
func appendJSONField[S string | []byte](dst []byte, key string, value S) []byte {
	start := len(dst)
	dst = append(dst, key...)
	dst = append(dst, `":`...)
	if out, ok := appendJSONString(dst, value); ok {
		return out
	}
	dst = append(dst[:start], key...)
	dst = append(dst, `_base64":"`...)
	dst = appendBase64(dst, value)
	return append(dst, '"')
}

// AppendJSONString appends s as a quoted JSON string escaped as the JSON
// format escapes its strings (RFC 8259, plus U+2028 and U+2029). Bytes that
// are not valid UTF-8 become U+FFFD, so the result is always valid JSON (the
// JSON format itself keeps such bytes with its *_base64 keys instead). It
// allocates only to grow dst, and once more when s is not valid UTF-8.
func AppendJSONString[S string | []byte](dst []byte, s S) []byte {
	if out, ok := appendJSONString(dst, s); ok {
		return out
	}
	out, _ := appendJSONString(dst, strings.ToValidUTF8(string(s), "\uFFFD"))
	return out
}

// appendJSONString appends s as a quoted JSON string. If s is not valid
// UTF-8 it returns dst unchanged (same length) and false.
func appendJSONString[S string | []byte](dst []byte, s S) ([]byte, bool) {
	return appendJSONBytes(dst, bytesOf(s))
}

// bytesOf returns the bytes of s without copying; callers must not modify
// them.
func bytesOf[S string | []byte](s S) []byte {
	switch v := any(s).(type) {
	case string:
		return unsafe.Slice(unsafe.StringData(v), len(v))
	case []byte:
		return v
	}
	panic("unreachable")
}

func appendJSONBytes(dst, s []byte) ([]byte, bool) {
	start := len(dst)
	dst = append(dst, '"')
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i = skipSafe(s, i+1)
				continue
			}
			dst = append(dst, s[last:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			last = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			return dst[:start], false
		}
		if r == '\u2028' || r == '\u2029' {
			// Valid JSON, but not valid JavaScript: escape like encoding/json.
			dst = append(dst, s[last:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			last = i + size
		}
		i += size
	}
	dst = append(dst, s[last:]...)
	return append(dst, '"'), true
}

// skipSafe returns the index of the first byte at or after i that needs a
// closer look (not ASCII, a control byte, '"' or '\\'), or len(s). It tests
// eight bytes at a time: log lines are mostly long safe runs.
func skipSafe(s []byte, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(s); i += 8 {
		w := binary.LittleEndian.Uint64(s[i : i+8])
		q := w ^ (ones * '"')
		b := w ^ (ones * '\\')
		// A byte's high bit is set in m iff that byte, or (after a borrow) a
		// higher one, is < 0x20, '"', '\\' or >= 0x80: the fast path may end
		// a little early, never late.
		m := (w-ones*0x20)&^w | (q-ones)&^q | (b-ones)&^b | w
		if m&highs != 0 {
			break
		}
	}
	for i < len(s) && s[i] < utf8.RuneSelf && jsonSafe[s[i]] {
		i++
	}
	return i
}

// appendBase64 appends the standard base64 encoding of s without
// converting s to a []byte (which would allocate).
func appendBase64[S string | []byte](dst []byte, s S) []byte {
	var chunk [48]byte // a multiple of 3: chunks concatenate without padding
	for len(s) > len(chunk) {
		n := copy(chunk[:], s)
		dst = base64.StdEncoding.AppendEncode(dst, chunk[:n])
		s = s[n:]
	}
	n := copy(chunk[:], s)
	return base64.StdEncoding.AppendEncode(dst, chunk[:n])
}

// sdValid reports whether every ID, name and value in sd is valid UTF-8.
func sdValid(sd event.StructuredData) bool {
	for _, el := range sd {
		if !utf8.ValidString(el.ID) {
			return false
		}
		for _, p := range el.Params {
			if !utf8.ValidString(p.Name) || !utf8.ValidString(p.Value) {
				return false
			}
		}
	}
	return true
}

// appendJSONSD appends `,"sd":{…}`, or `,"sd_base64":{…}` with every string
// base64-encoded when any of them is not valid UTF-8. Elements and
// parameters keep their order (DecodeJSON reads them back in order).
func appendJSONSD(dst []byte, sd event.StructuredData) []byte {
	b64 := !sdValid(sd)
	if b64 {
		dst = append(dst, `,"sd_base64":{`...)
	} else {
		dst = append(dst, `,"sd":{`...)
	}
	str := func(dst []byte, s string) []byte {
		if b64 {
			dst = append(dst, '"')
			dst = appendBase64(dst, s)
			return append(dst, '"')
		}
		dst, _ = appendJSONString(dst, s)
		return dst
	}
	for i, el := range sd {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = str(dst, el.ID)
		dst = append(dst, ':', '{')
		for j, p := range el.Params {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = str(dst, p.Name)
			dst = append(dst, ':')
			dst = str(dst, p.Value)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}
