package syslog

import (
	"time"

	"github.com/sluicelog/sluice/router/event"
)

// Parser parses syslog frames the way the syslog input does, for other
// inputs that carry syslog payloads (the zmq input). A Parser keeps state
// between calls: one per goroutine.
type Parser struct{ d *decoder }

// NewParser returns a parser for format: "auto" (RFC 5424 or RFC 3164,
// detected per frame), "rfc5424" or "rfc3164". RFC 3164 stamps, which
// carry no zone or year, are read in loc (nil: UTC). input and stream
// become the events' Input and Stream.
func NewParser(format string, loc *time.Location, input, stream string) *Parser {
	if loc == nil {
		loc = time.UTC
	}
	return &Parser{d: newDecoder(format, loc, input, stream)}
}

// Parse fills ev from frame, which must be ev's own immutable Raw (parsed
// fields share its bytes); it sets every field but Raw, Origin and, when
// the frame names no host, Host. Received (and Time, if the frame has no
// stamp) is recv. It reports whether the frame failed to parse, fully or
// in part; ev then still holds the frame as its Message.
func (p *Parser) Parse(ev *event.Event, frame []byte, recv time.Time) (failed bool) {
	return p.d.decode(ev, frame, recv)
}
