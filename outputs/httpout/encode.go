package httpout

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/outputs/format"
	"github.com/sluicelog/sluice/router/event"
)

// field is an event field a HEC template can name in {braces}.
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

// template is a compiled HEC field template: literal text with {field}
// placeholders. "{" and "}" cannot be written literally.
type template []segment

// compileTemplate parses s; unknown fields and unbalanced braces are
// errors.
func compileTemplate(s string) (template, error) {
	var t template
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

// render appends the rendered template to dst.
func (t template) render(dst []byte, ev *event.Event) []byte {
	for _, s := range t {
		if s.isField {
			dst = append(dst, fieldValue(ev, s.field)...)
		} else {
			dst = append(dst, s.lit...)
		}
	}
	return dst
}

// hecEvent selects the "event" value of a HEC envelope.
type hecEvent int

const (
	hecRaw hecEvent = iota
	hecMessage
	hecJSON
)

// hecSettings is a validated HECConfig. Each key holds `,"name":` ready to
// append; a field whose template is empty is nil.
type hecSettings struct {
	fields []hecField
	event  hecEvent
}

type hecField struct {
	key  string // `,"host":`
	tmpl template
	// lit is the whole value as a JSON string when tmpl has no placeholder
	// ("" if it renders empty).
	lit     []byte
	literal bool
}

func parseHEC(c *HECConfig) (*hecSettings, []error) {
	var errs []error
	h := &hecSettings{}
	for _, f := range []struct{ name, src, def string }{
		{"host", c.Host, "{host}"},
		{"source", c.Source, "{app}"},
		{"sourcetype", c.Sourcetype, "syslog"},
		{"index", c.Index, ""},
	} {
		src := f.src
		if src == "" {
			src = f.def
		}
		if src == "" {
			continue
		}
		t, err := compileTemplate(src)
		if err != nil {
			errs = append(errs, conf.Field("splunk_hec."+f.name, err))
			continue
		}
		hf := hecField{key: `,"` + f.name + `":`, tmpl: t, literal: true}
		for _, s := range t {
			hf.literal = hf.literal && !s.isField
		}
		if hf.literal {
			hf.lit = format.AppendJSONString(nil, src)
		}
		h.fields = append(h.fields, hf)
	}
	switch c.Event {
	case "", "raw":
		h.event = hecRaw
	case "message":
		h.event = hecMessage
	case "json":
		h.event = hecJSON
	default:
		errs = append(errs, conf.Field("splunk_hec.event", fmt.Errorf("unknown event %q (want \"raw\", \"message\" or \"json\")", c.Event)))
	}
	return h, errs
}

// appendHEC appends the HEC envelope of ev:
// {"time":SECONDS.MILLIS,"host":…,"source":…,"sourcetype":…,"index":…,"event":…}.
// scratch is a reusable buffer for rendering templates; the grown scratch is
// returned too.
func (h *hecSettings) appendHEC(dst, scratch []byte, ev *event.Event) ([]byte, []byte) {
	dst = append(dst, `{"time":`...)
	ms := ev.Time.UnixMilli()
	if ev.Time.IsZero() {
		ms = ev.Received.UnixMilli()
	}
	if ms < 0 {
		dst = append(dst, '-')
		ms = -ms
	}
	dst = strconv.AppendInt(dst, ms/1000, 10)
	frac := ms % 1000
	dst = append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	for i := range h.fields {
		f := &h.fields[i]
		if f.literal {
			dst = append(dst, f.key...)
			dst = append(dst, f.lit...)
			continue
		}
		scratch = f.tmpl.render(scratch[:0], ev)
		if len(scratch) == 0 {
			continue
		}
		dst = append(dst, f.key...)
		dst = format.AppendJSONString(dst, scratch)
	}
	dst = append(dst, `,"event":`...)
	switch h.event {
	case hecMessage:
		dst = format.AppendJSONString(dst, ev.Message)
	case hecJSON:
		dst = jsonFormat.Append(dst, ev)
	default:
		dst = format.AppendJSONString(dst, ev.Raw)
	}
	return append(dst, '}'), scratch
}
