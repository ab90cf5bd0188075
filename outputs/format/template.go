package format

import (
	"fmt"
	"strings"

	"github.com/sluicelog/sluice/router/event"
)

// Field templates: literal text with {field} placeholders, rendered per
// event (HTTP HEC envelope fields, ZeroMQ PUB topics). The archive's path
// templates add strftime and sanitising on top and have their own parser.

// field is an event field a template can name in {braces}.
type field uint8

const (
	fieldStream field = iota
	fieldInput
	fieldOrigin
	fieldHost
	fieldApp
	fieldProcID
	fieldMsgID
	fieldFacility
	fieldSeverity
	numFields
)

var fieldNames = [numFields]string{
	fieldStream: "stream", fieldInput: "input", fieldOrigin: "origin", fieldHost: "host", fieldApp: "app",
	fieldProcID: "procid", fieldMsgID: "msgid", fieldFacility: "facility", fieldSeverity: "severity",
}

// fieldValue returns the value of f in ev; an unknown facility or severity
// is "".
func fieldValue(ev *event.Event, f field) string {
	switch f {
	case fieldStream:
		return ev.Stream
	case fieldInput:
		return ev.Input
	case fieldOrigin:
		return ev.Origin
	case fieldHost:
		return ev.Host
	case fieldApp:
		return ev.App
	case fieldProcID:
		return ev.ProcID
	case fieldMsgID:
		return ev.MsgID
	case fieldFacility:
		if ev.Facility >= 0 && ev.Facility <= 23 {
			return ev.Facility.String()
		}
	case fieldSeverity:
		if ev.Severity >= 0 && ev.Severity <= 7 {
			return ev.Severity.String()
		}
	}
	return ""
}

// segment is a literal (isField false) or a field placeholder.
type segment struct {
	lit     string
	field   field
	isField bool
}

// Template is a compiled field template: literal text with {field}
// placeholders ({stream}, {input}, {origin}, {host}, {app}, {procid},
// {msgid}, {facility}, {severity}). "{" and "}" cannot be written
// literally. Safe for concurrent use.
type Template []segment

// CompileTemplate parses s; unknown fields and unbalanced braces are
// errors.
func CompileTemplate(s string) (Template, error) {
	var t Template
	for rest := s; rest != ""; {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			t = append(t, segment{lit: rest})
			break
		}
		if rest[i] == '}' {
			return nil, fmt.Errorf("unmatched \"}\" in %q", s)
		}
		if i > 0 {
			t = append(t, segment{lit: rest[:i]})
		}
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unterminated \"{\" in %q", s)
		}
		name := rest[i+1 : i+end]
		f, ok := lookupField(name)
		if !ok {
			return nil, fmt.Errorf("unknown field {%s} in %q (want one of {%s})", name, s, strings.Join(fieldNames[:], "}, {"))
		}
		t = append(t, segment{field: f, isField: true})
		rest = rest[i+end+1:]
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

// Append appends the template rendered for ev to dst. An unknown facility
// or severity renders as "".
func (t Template) Append(dst []byte, ev *event.Event) []byte {
	for _, s := range t {
		if s.isField {
			dst = append(dst, fieldValue(ev, s.field)...)
		} else {
			dst = append(dst, s.lit...)
		}
	}
	return dst
}

// Literal reports whether t has no field placeholders (it renders the same
// for every event).
func (t Template) Literal() bool {
	for _, s := range t {
		if s.isField {
			return false
		}
	}
	return true
}
