// Package format holds the event encoders shared by the outputs (archive,
// zmq, http, tap): "raw" (the frame as received), "rfc5424" (a re-encoded,
// always-valid RFC 5424 line) and "json" (one self-describing JSON object
// that DecodeJSON turns back into the same Event).
//
// Every encoder appends one record without a trailing newline to a caller's
// buffer and allocates nothing beyond growing that buffer, so outputs can
// encode a whole batch into one reused []byte.
package format

import (
	"fmt"

	"github.com/sluicelog/sluice/router/event"
)

// Format selects an event encoding. The zero value is Raw.
type Format int

const (
	// Raw writes ev.Raw unchanged: the original frame without transport
	// framing. An embedded LF in the frame is written as is.
	Raw Format = iota
	// RFC5424 writes `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`
	// built from the parsed fields; see (Format).Append for the rules that
	// keep it valid.
	RFC5424
	// JSON writes one JSON object per event; see (Format).Append for the
	// schema. DecodeJSON reverses it exactly.
	JSON
)

// names is indexed by Format.
var names = [...]string{Raw: "raw", RFC5424: "rfc5424", JSON: "json"}

// String returns the configuration name of f ("raw", "rfc5424", "json").
func (f Format) String() string {
	if f >= 0 && int(f) < len(names) {
		return names[f]
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Parse maps a configuration name to its Format. Names are case-sensitive.
func Parse(name string) (Format, error) {
	for i, n := range names {
		if n == name {
			return Format(i), nil
		}
	}
	return 0, fmt.Errorf("unknown format %q (want one of \"raw\", \"rfc5424\", \"json\")", name)
}

// Append appends the encoding of ev to dst, without a trailing newline, and
// returns the extended buffer. It allocates only to grow dst.
//
// Raw: ev.Raw exactly.
//
// RFC5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD[ MSG]`.
//   - PRI is ev.Priority(); an unknown or out-of-range facility or severity
//     gives 13 (user.notice), the RFC 5424 default for a missing PRI.
//   - TIMESTAMP is ev.Time in its own UTC offset with microseconds
//     ("2006-01-02T15:04:05.000000Z07:00"); "-" when ev.Time is zero or its
//     year is outside 0000–9999. An offset that is not a whole minute is
//     converted to UTC.
//   - HOSTNAME, APP-NAME, PROCID and MSGID are "-" when empty, truncated to
//     255, 48, 128 and 32 bytes, and every byte outside printable US-ASCII
//     (33–126) is replaced by '_'.
//   - SD is "-" when ev.SD is empty; otherwise elements and parameters are
//     written in their order. SD-IDs and PARAM-NAMEs are truncated to 32
//     bytes with '=', ' ', ']', '"' and non-printable bytes replaced by '_'
//     (an empty name becomes "_"; an element whose cleaned ID repeats an
//     earlier one is dropped). PARAM-VALUEs escape '"', '\' and ']' with a
//     backslash; invalid UTF-8 becomes U+FFFD.
//   - MSG is ev.Message verbatim, preceded by one space; both are omitted when
//     the message is empty. An embedded LF is written as is.
//
// JSON: one object with the keys, in this order:
//
//	time, received   RFC 3339 with nanoseconds, UTC (null if the year is
//	                 outside 0000–9999)
//	input, stream, origin, host, app, procid, msgid, message   strings
//	facility, severity   keyword ("auth", "err"), or null when unknown
//	sd       {"SD-ID": {"PARAM": "value"}} in order, omitted when ev.SD is nil
//	raw      the original frame as a string
//
// A string field whose value is not valid UTF-8 is written as
// "<key>_base64" (standard base64 with padding) in place of "<key>", so every
// byte survives; for sd, "sd_base64" has the same shape with every ID, name
// and value base64-encoded. Strings are escaped per RFC 8259 (plus U+2028 and
// U+2029), so the object never contains a raw newline.
func (f Format) Append(dst []byte, ev *event.Event) []byte {
	switch f {
	case RFC5424:
		return appendRFC5424(dst, ev)
	case JSON:
		return appendJSON(dst, ev)
	default:
		return append(dst, ev.Raw...)
	}
}
