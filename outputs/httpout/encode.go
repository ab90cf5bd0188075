package httpout

import (
	"fmt"
	"strconv"

	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/outputs/format"
	"github.com/sluicelog/sluice/router/event"
)

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
	tmpl format.Template
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
		t, err := format.CompileTemplate(src)
		if err != nil {
			errs = append(errs, conf.Field("splunk_hec."+f.name, err))
			continue
		}
		hf := hecField{key: `,"` + f.name + `":`, tmpl: t, literal: t.Literal()}
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
		scratch = f.tmpl.Append(scratch[:0], ev)
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
