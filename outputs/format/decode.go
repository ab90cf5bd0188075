package format

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sluicelog/sluice/router/event"
)

// jsonEvent mirrors the object appendJSON writes. Pointers tell a missing or
// null key from an empty string.
type jsonEvent struct {
	Time     *string `json:"time"`
	Received *string `json:"received"`

	Input        *string `json:"input"`
	InputBase64  []byte  `json:"input_base64"`
	Stream       *string `json:"stream"`
	StreamBase64 []byte  `json:"stream_base64"`
	Origin       *string `json:"origin"`
	OriginBase64 []byte  `json:"origin_base64"`

	Facility json.RawMessage `json:"facility"`
	Severity json.RawMessage `json:"severity"`

	Host          *string `json:"host"`
	HostBase64    []byte  `json:"host_base64"`
	App           *string `json:"app"`
	AppBase64     []byte  `json:"app_base64"`
	ProcID        *string `json:"procid"`
	ProcIDBase64  []byte  `json:"procid_base64"`
	MsgID         *string `json:"msgid"`
	MsgIDBase64   []byte  `json:"msgid_base64"`
	Message       *string `json:"message"`
	MessageBase64 []byte  `json:"message_base64"`

	SD       *orderedSD `json:"sd"`
	SDBase64 *orderedSD `json:"sd_base64"`

	Raw       *string `json:"raw"`
	RawBase64 []byte  `json:"raw_base64"`
}

// DecodeJSON parses one object written by JSON.Append back into an Event.
// For such input every field round-trips exactly: strings and Raw byte for
// byte (including invalid UTF-8, via the *_base64 keys), times as the same
// instant (in UTC), a nil SD as nil. A missing or null facility or severity
// is -1; a number is also accepted. Missing strings are empty, missing
// times zero. Unknown keys are ignored; anything else malformed is an error.
func DecodeJSON(b []byte) (*event.Event, error) {
	var j jsonEvent
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("decode json event: %w", err)
	}
	ev := &event.Event{
		Input:   pick(j.Input, j.InputBase64),
		Stream:  pick(j.Stream, j.StreamBase64),
		Origin:  pick(j.Origin, j.OriginBase64),
		Host:    pick(j.Host, j.HostBase64),
		App:     pick(j.App, j.AppBase64),
		ProcID:  pick(j.ProcID, j.ProcIDBase64),
		MsgID:   pick(j.MsgID, j.MsgIDBase64),
		Message: pick(j.Message, j.MessageBase64),
	}
	var errs []error
	var err error
	if ev.Time, err = decodeTime(j.Time); err != nil {
		errs = append(errs, fmt.Errorf("time: %w", err))
	}
	if ev.Received, err = decodeTime(j.Received); err != nil {
		errs = append(errs, fmt.Errorf("received: %w", err))
	}
	f, err := decodeLevel(j.Facility, 23, func(s string) (int, error) {
		f, err := event.ParseFacility(s)
		return int(f), err
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("facility: %w", err))
	}
	ev.Facility = event.Facility(f)
	s, err := decodeLevel(j.Severity, 7, func(s string) (int, error) {
		v, err := event.ParseSeverity(s)
		return int(v), err
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("severity: %w", err))
	}
	ev.Severity = event.Severity(s)

	switch {
	case j.SDBase64 != nil:
		if ev.SD, err = decodeSDBase64(event.StructuredData(*j.SDBase64)); err != nil {
			errs = append(errs, fmt.Errorf("sd_base64: %w", err))
		}
	case j.SD != nil:
		ev.SD = event.StructuredData(*j.SD)
	}
	switch {
	case j.RawBase64 != nil:
		ev.Raw = j.RawBase64
	case j.Raw != nil:
		ev.Raw = []byte(*j.Raw)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("decode json event: %w", errors.Join(errs...))
	}
	return ev, nil
}

// pick returns the base64 variant when present, else the plain string.
func pick(s *string, b64 []byte) string {
	if b64 != nil {
		return string(b64)
	}
	if s != nil {
		return *s
	}
	return ""
}

func decodeTime(s *string) (time.Time, error) {
	if s == nil {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, *s)
}

// decodeLevel decodes a facility or severity: null/missing → -1, a keyword
// via parse, or a number in 0..max.
func decodeLevel(raw json.RawMessage, max int, parse func(string) (int, error)) (int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return -1, nil
	}
	if raw[0] == '"' {
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			return -1, err
		}
		return parse(name)
	}
	n, err := strconv.Atoi(string(raw))
	if err != nil || n < -1 || n > max {
		return -1, fmt.Errorf("invalid value %s", raw)
	}
	return n, nil
}

func decodeSDBase64(in event.StructuredData) (event.StructuredData, error) {
	dec := func(s string) (string, error) {
		b, err := base64.StdEncoding.DecodeString(s)
		return string(b), err
	}
	out := make(event.StructuredData, len(in))
	for i, el := range in {
		id, err := dec(el.ID)
		if err != nil {
			return nil, fmt.Errorf("id %q: %w", el.ID, err)
		}
		out[i] = event.SDElement{ID: id, Params: make([]event.SDParam, len(el.Params))}
		for k, p := range el.Params {
			name, err := dec(p.Name)
			if err != nil {
				return nil, fmt.Errorf("name %q: %w", p.Name, err)
			}
			value, err := dec(p.Value)
			if err != nil {
				return nil, fmt.Errorf("value of %q: %w", p.Name, err)
			}
			out[i].Params[k] = event.SDParam{Name: name, Value: value}
		}
	}
	return out, nil
}

// orderedSD decodes {"id":{"name":"value",…},…} keeping the order of
// elements and parameters, which a Go map would lose.
type orderedSD event.StructuredData

func (o *orderedSD) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	str := func() (string, error) {
		t, err := dec.Token()
		if err != nil {
			return "", err
		}
		s, ok := t.(string)
		if !ok {
			return "", fmt.Errorf("want a string, got %v", t)
		}
		return s, nil
	}
	delim := func(want json.Delim) error {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := t.(json.Delim); !ok || d != want {
			return fmt.Errorf("want %q, got %v", want, t)
		}
		return nil
	}
	if err := delim('{'); err != nil {
		return fmt.Errorf("sd: %w", err)
	}
	sd := event.StructuredData{}
	for dec.More() {
		id, err := str()
		if err != nil {
			return fmt.Errorf("sd: %w", err)
		}
		if err := delim('{'); err != nil {
			return fmt.Errorf("sd %q: %w", id, err)
		}
		el := event.SDElement{ID: id, Params: []event.SDParam{}}
		for dec.More() {
			name, err := str()
			if err != nil {
				return fmt.Errorf("sd %q: %w", id, err)
			}
			value, err := str()
			if err != nil {
				return fmt.Errorf("sd %q param %q: %w", id, name, err)
			}
			el.Params = append(el.Params, event.SDParam{Name: name, Value: value})
		}
		if err := delim('}'); err != nil {
			return fmt.Errorf("sd %q: %w", id, err)
		}
		sd = append(sd, el)
	}
	if err := delim('}'); err != nil {
		return fmt.Errorf("sd: %w", err)
	}
	*o = orderedSD(sd)
	return nil
}
