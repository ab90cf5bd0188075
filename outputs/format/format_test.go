package format

import (
	"bytes"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/sluicelog/sluice/router/event"
)

var (
	plus2 = time.FixedZone("", 2*3600)
	t0    = time.Date(2026, 11, 22, 13, 4, 5, 123456789, plus2)
	recv  = time.Date(2026, 11, 22, 11, 4, 6, 5000, time.UTC)
)

func fullEvent() *event.Event {
	return &event.Event{
		Received: recv,
		Time:     t0,
		Input:    "edge",
		Stream:   "syslog",
		Origin:   "10.0.0.1:514",
		Facility: 4,
		Severity: 3,
		Host:     "web-1",
		App:      "sshd",
		ProcID:   "42",
		MsgID:    "ID7",
		Message:  `login "root" failed`,
		SD: event.SDFromMap(map[string]map[string]string{
			"origin@1":  {"ip": "10.0.0.1"},
			"example@2": {"z": `a"b\c]d`, "a": "é"},
		}),
		Raw: []byte(`<36>1 2026-11-22T13:04:05.123456+02:00 web-1 sshd 42 ID7 - login "root" failed`),
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Format
		err  bool
	}{
		{"raw", Raw, false}, {"rfc5424", RFC5424, false}, {"json", JSON, false},
		{"JSON", 0, true}, {"", 0, true}, {"rfc3164", 0, true},
	} {
		got, err := Parse(tc.name)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v, err %v", tc.name, got, err, tc.want, tc.err)
		}
		if err != nil && !strings.Contains(err.Error(), `"raw", "rfc5424", "json"`) {
			t.Errorf("Parse(%q) error %q does not list the valid names", tc.name, err)
		}
		if err == nil && got.String() != tc.name {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}

func TestGolden(t *testing.T) {
	minimal := &event.Event{Facility: -1, Severity: -1, Raw: []byte("just text")}
	odd := &event.Event{
		Time:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Received: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Facility: 23, Severity: 7,
		Host:    "has space\x01",
		App:     strings.Repeat("a", 60),
		ProcID:  "-",
		MsgID:   "m\u00e9",
		Message: "line1\nline2\t\x00\u2028",
		SD:      event.SDFromMap(map[string]map[string]string{"bad id=": {"": "v", "k]": ""}, "bad id]": {"x": "y"}}),
		Raw:     []byte{0xff, 'a'},
	}
	emptySD := &event.Event{Facility: 1, Severity: 6, Message: "m", SD: event.StructuredData{}}
	for _, tc := range []struct {
		name string
		f    Format
		ev   *event.Event
		want string
	}{
		{"raw/full", Raw, fullEvent(), `<36>1 2026-11-22T13:04:05.123456+02:00 web-1 sshd 42 ID7 - login "root" failed`},
		{"raw/invalid-utf8", Raw, odd, "\xffa"},
		{"rfc5424/full", RFC5424, fullEvent(),
			`<35>1 2026-11-22T13:04:05.123456+02:00 web-1 sshd 42 ID7 [example@2 a="é" z="a\"b\\c\]d"][origin@1 ip="10.0.0.1"] login "root" failed`},
		{"rfc5424/minimal", RFC5424, minimal, `<13>1 - - - - - -`},
		{"rfc5424/sanitized", RFC5424, odd,
			"<191>1 2026-01-02T03:04:05.000000Z has_space_ " + strings.Repeat("a", 48) + ` - m__ [bad_id_ _="v" k_=""] line1` + "\nline2\t\x00\u2028"},
		{"rfc5424/empty-sd", RFC5424, emptySD, `<14>1 - - - - - - m`},
		{"json/full", JSON, fullEvent(),
			`{"time":"2026-11-22T11:04:05.123456789Z","received":"2026-11-22T11:04:06.000005Z","input":"edge","stream":"syslog","origin":"10.0.0.1:514","facility":"auth","severity":"err","host":"web-1","app":"sshd","procid":"42","msgid":"ID7","message":"login \"root\" failed","sd":{"example@2":{"a":"é","z":"a\"b\\c]d"},"origin@1":{"ip":"10.0.0.1"}},"raw":"\u003c36\u003e1 2026-11-22T13:04:05.123456+02:00 web-1 sshd 42 ID7 - login \"root\" failed"}`},
		{"json/minimal", JSON, minimal,
			`{"time":"0001-01-01T00:00:00Z","received":"0001-01-01T00:00:00Z","input":"","stream":"","origin":"","facility":null,"severity":null,"host":"","app":"","procid":"","msgid":"","message":"","raw":"just text"}`},
		{"json/escapes", JSON, odd,
			`{"time":"2026-01-02T03:04:05Z","received":"2026-01-02T03:04:05Z","input":"","stream":"","origin":"","facility":"local7","severity":"debug","host":"has space\u0001","app":"` + strings.Repeat("a", 60) + `","procid":"-","msgid":"mé","message":"line1\nline2\t\u0000\u2028","sd":{"bad id=":{"":"v","k]":""},"bad id]":{"x":"y"}},"raw_base64":"/2E="}`},
		{"json/empty-sd", JSON, emptySD,
			`{"time":"0001-01-01T00:00:00Z","received":"0001-01-01T00:00:00Z","input":"","stream":"","origin":"","facility":"user","severity":"info","host":"","app":"","procid":"","msgid":"","message":"m","sd":{},"raw":""}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if tc.name == "json/full" {
				// '<' and '>' are not escaped by our encoder.
				want = strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(want)
			}
			prefix := []byte("prefix|")
			got := tc.f.Append(prefix, tc.ev)
			if !bytes.HasPrefix(got, []byte("prefix|")) {
				t.Fatalf("Append did not keep dst: %q", got)
			}
			if string(got[len(prefix):]) != want {
				t.Errorf("got\n%s\nwant\n%s", got[len(prefix):], want)
			}
			if tc.f == JSON && !json.Valid(got[len(prefix):]) {
				t.Errorf("invalid JSON: %s", got[len(prefix):])
			}
		})
	}
}

func TestJSONInvalidUTF8UsesBase64(t *testing.T) {
	ev := &event.Event{
		Facility: -1, Severity: -1,
		Input: "in\xff", Host: "h\xc3", Message: "bad \xe2\x82 message",
		SD:  event.SDFromMap(map[string]map[string]string{"id": {"k": "v\xff"}}),
		Raw: []byte("ok"),
	}
	got := string(JSON.Append(nil, ev))
	for _, key := range []string{`"input_base64":"aW7/"`, `"host_base64":"aMM="`, `"message_base64":`, `"sd_base64":{"aWQ=":{"aw==":"dv8="}}`, `"raw":"ok"`} {
		if !strings.Contains(got, key) {
			t.Errorf("missing %s in %s", key, got)
		}
	}
	for _, key := range []string{`"input":`, `"host":`, `"message":`, `"sd":`} {
		if strings.Contains(got, key) {
			t.Errorf("unexpected %s in %s", key, got)
		}
	}
	if !json.Valid([]byte(got)) {
		t.Fatalf("invalid JSON: %s", got)
	}
	back, err := DecodeJSON([]byte(got))
	if err != nil {
		t.Fatal(err)
	}
	if diff := eventDiff(ev, back); diff != "" {
		t.Error(diff)
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	for _, in := range []string{
		``, `[]`, `{"time":"yesterday"}`, `{"facility":"nope"}`, `{"severity":9}`,
		`{"raw_base64":"!!"}`, `{"sd_base64":{"!":{}}}`, `{"host":1}`,
	} {
		if ev, err := DecodeJSON([]byte(in)); err == nil {
			t.Errorf("DecodeJSON(%s) = %+v, want error", in, ev)
		}
	}
	ev, err := DecodeJSON([]byte(`{"facility":4,"severity":"warn","message":"m","extra":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Facility != 4 || ev.Severity != 4 || ev.Message != "m" || ev.SD != nil {
		t.Errorf("got %+v", ev)
	}
}

// eventDiff compares the fields the JSON format carries; "" when equal.
func eventDiff(want, got *event.Event) string {
	var b strings.Builder
	check := func(name string, ok bool, w, g any) {
		if !ok {
			b.WriteString(name + ": want " + quote(w) + ", got " + quote(g) + "\n")
		}
	}
	check("time", want.Time.Equal(got.Time), want.Time, got.Time)
	check("received", want.Received.Equal(got.Received), want.Received, got.Received)
	check("input", want.Input == got.Input, want.Input, got.Input)
	check("stream", want.Stream == got.Stream, want.Stream, got.Stream)
	check("origin", want.Origin == got.Origin, want.Origin, got.Origin)
	check("facility", want.Facility == got.Facility, want.Facility, got.Facility)
	check("severity", want.Severity == got.Severity, want.Severity, got.Severity)
	check("host", want.Host == got.Host, want.Host, got.Host)
	check("app", want.App == got.App, want.App, got.App)
	check("procid", want.ProcID == got.ProcID, want.ProcID, got.ProcID)
	check("msgid", want.MsgID == got.MsgID, want.MsgID, got.MsgID)
	check("message", want.Message == got.Message, want.Message, got.Message)
	check("raw", bytes.Equal(want.Raw, got.Raw), string(want.Raw), string(got.Raw))
	check("sd nil", (want.SD == nil) == (got.SD == nil), want.SD == nil, got.SD == nil)
	check("sd", sdEqual(want.SD, got.SD), want.SD, got.SD)
	return b.String()
}

func quote(v any) string {
	b, _ := json.Marshal(v)
	if s, ok := v.(string); ok && !utf8.ValidString(s) {
		return "bytes" + string(must(json.Marshal([]byte(s))))
	}
	return string(b)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestJSONRoundTrip(t *testing.T) {
	for _, ev := range []*event.Event{fullEvent(), {Facility: -1, Severity: -1}, {Facility: 0, Severity: 0, Raw: []byte{}}} {
		b := JSON.Append(nil, ev)
		back, err := DecodeJSON(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if d := eventDiff(ev, back); d != "" {
			t.Errorf("%s:\n%s", b, d)
		}
	}
}

// FuzzJSONRoundTrip checks DecodeJSON(JSON.Append(ev)) == ev for events
// built from arbitrary bytes, including invalid UTF-8 in every field.
func FuzzJSONRoundTrip(f *testing.F) {
	f.Add([]byte("edge\x00syslog\x00h\x00a\x00p\x00m\x00message\x00id\x00k\x00v"), int64(1763805845123456789), int64(0), int8(4), int8(3), true)
	f.Add([]byte("\xff\xfe\x00\xc3\x00\n\"\\\x00\u2028"), int64(-5), int64(1), int8(-1), int8(-1), false)
	f.Add([]byte{}, int64(0), int64(0), int8(23), int8(7), true)
	f.Fuzz(func(t *testing.T, data []byte, tns, rns int64, fac, sev int8, withSD bool) {
		parts := strings.Split(string(data), "\x00")
		part := func(i int) string {
			if i < len(parts) {
				return parts[i]
			}
			return ""
		}
		clamp := func(v, lo, hi int8) int8 { return min(max(v, lo), hi) }
		ev := &event.Event{
			Time:     time.Unix(0, tns).In(plus2),
			Received: time.Unix(0, rns),
			Input:    part(0), Stream: part(1), Host: part(2), App: part(3), ProcID: part(4), MsgID: part(5),
			Message:  part(6),
			Origin:   part(10),
			Facility: event.Facility(clamp(fac, -1, 23)),
			Severity: event.Severity(clamp(sev, -1, 7)),
			Raw:      data,
		}
		if withSD {
			ev.SD = event.SDFromMap(map[string]map[string]string{part(7): {part(8): part(9)}, "x@1": nil})
		}
		b := JSON.Append(nil, ev)
		if !json.Valid(b) {
			t.Fatalf("invalid JSON: %q", b)
		}
		if bytes.IndexByte(b, '\n') >= 0 {
			t.Fatalf("newline in JSON output: %q", b)
		}
		back, err := DecodeJSON(b)
		if err != nil {
			t.Fatalf("DecodeJSON(%s): %v", b, err)
		}
		if d := eventDiff(ev, back); d != "" {
			t.Fatalf("%s:\n%s", b, d)
		}
	})
}

// TestRFC5424Reparse checks that go-syslog's strict RFC 5424 machine reads
// our output back to the same fields, including after sanitization.
func TestRFC5424Reparse(t *testing.T) {
	sanitizedSD := map[string]map[string]string{"bad_id_": {"_": "v", "k_": ""}}
	for _, tc := range []struct {
		name string
		ev   *event.Event
		// expected after sanitization, when it differs from ev
		host, app, msgid string
		sd               map[string]map[string]string
	}{
		{name: "full", ev: fullEvent()},
		{name: "unknown-pri", ev: &event.Event{Facility: -1, Severity: 5, Time: t0, Message: "x"}},
		{name: "no-message", ev: &event.Event{Facility: 16, Severity: 6, Time: t0.UTC(), Host: "h"}},
		{name: "sanitized", ev: &event.Event{
			Facility: 1, Severity: 1, Time: t0,
			Host: "a b\x7f", App: strings.Repeat("x", 50), MsgID: "é",
			SD:      event.SDFromMap(map[string]map[string]string{"bad id=": {"": "v", "k]": ""}, "bad id]": {"x": "y"}}),
			Message: "msg with ] and \" and ünïcode",
		}, host: "a_b_", app: strings.Repeat("x", 48), msgid: "__", sd: sanitizedSD},
		{name: "invalid-utf8-value", ev: &event.Event{
			Facility: 1, Severity: 1, Time: t0,
			SD: event.SDFromMap(map[string]map[string]string{"a@1": {"k": "x\xffy"}}),
		}, sd: map[string]map[string]string{"a@1": {"k": "x\uFFFDy"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := RFC5424.Append(nil, tc.ev)
			msg, err := rfc5424.NewMachine().Parse(line)
			if err != nil {
				t.Fatalf("parse %q: %v", line, err)
			}
			m := msg.(*rfc5424.SyslogMessage)
			str := func(p *string) string {
				if p == nil {
					return ""
				}
				return *p
			}
			wantPRI := tc.ev.Priority()
			if wantPRI < 0 {
				wantPRI = 13
			}
			if m.Priority == nil || int(*m.Priority) != wantPRI {
				t.Errorf("priority %v, want %d", m.Priority, wantPRI)
			}
			if m.Timestamp == nil || !m.Timestamp.Equal(tc.ev.Time.Truncate(time.Microsecond)) {
				t.Errorf("timestamp %v, want %v", m.Timestamp, tc.ev.Time)
			}
			or := func(a, b string) string {
				if a != "" {
					return a
				}
				return b
			}
			for _, f := range []struct{ name, got, want string }{
				{"host", str(m.Hostname), or(tc.host, tc.ev.Host)},
				{"app", str(m.Appname), or(tc.app, tc.ev.App)},
				{"procid", str(m.ProcID), tc.ev.ProcID},
				{"msgid", str(m.MsgID), or(tc.msgid, tc.ev.MsgID)},
				{"message", str(m.Message), tc.ev.Message},
			} {
				if f.got != f.want {
					t.Errorf("%s = %q, want %q (line %q)", f.name, f.got, f.want, line)
				}
			}
			wantSD := tc.sd
			if wantSD == nil {
				wantSD = sdMap(tc.ev.SD)
			}
			var gotSD map[string]map[string]string
			if m.StructuredData != nil {
				gotSD = *m.StructuredData
			}
			if !maps.EqualFunc(wantSD, gotSD, func(a, b map[string]string) bool { return maps.Equal(a, b) }) {
				t.Errorf("sd = %v, want %v (line %q)", gotSD, wantSD, line)
			}
		})
	}
}

// FuzzRFC5424Valid checks that any event encodes to a line the strict
// go-syslog RFC 5424 machine accepts.
func FuzzRFC5424Valid(f *testing.F) {
	f.Add([]byte("h\x00a\x00p\x00m\x00id\x00k\x00v\x00msg"), int64(1763805845123456789), int8(4), int8(3))
	f.Add([]byte("\xff \x00]\"=\x00\x00\x00\x00\x00\\"), int64(-1), int8(-1), int8(9))
	f.Fuzz(func(t *testing.T, data []byte, tns int64, fac, sev int8) {
		parts := strings.Split(string(data), "\x00")
		part := func(i int) string {
			if i < len(parts) {
				return parts[i]
			}
			return ""
		}
		ev := &event.Event{
			Time: time.Unix(0, tns), Facility: event.Facility(fac), Severity: event.Severity(sev),
			Host: part(0), App: part(1), ProcID: part(2), MsgID: part(3),
			SD:      event.SDFromMap(map[string]map[string]string{part(4): {part(5): part(6)}, part(5): {part(4): part(6)}}),
			Message: part(7),
		}
		line := RFC5424.Append(nil, ev)
		var m syslog.Message
		var err error
		if m, err = rfc5424.NewMachine().Parse(line); err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		if got := m.(*rfc5424.SyslogMessage).Message; ev.Message != "" && (got == nil || *got != ev.Message) {
			t.Fatalf("message changed: %q", line)
		}
	})
}

func TestAppendDoesNotAllocate(t *testing.T) {
	odd := fullEvent()
	odd.Host, odd.Message, odd.Raw = "bad host\xff", "invalid \xff message "+strings.Repeat("x", 100), []byte{0xff}
	odd.SD = append(odd.SD, event.SDElement{ID: "bad id", Params: []event.SDParam{{Name: "k=", Value: "v\xff"}}})
	for _, ev := range []*event.Event{fullEvent(), odd, {Facility: -1, Severity: -1}} {
		for _, f := range []Format{Raw, RFC5424, JSON} {
			buf := make([]byte, 0, 8192)
			if n := testing.AllocsPerRun(100, func() { buf = f.Append(buf[:0], ev) }); n != 0 {
				t.Errorf("%v: %v allocs per Append", f, n)
			}
		}
	}
}

func benchEvent() *event.Event {
	ev := fullEvent()
	ev.Message = "GET /api/v1/items?id=12345 HTTP/1.1 200 512 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\" rt=0.012 upstream=10.0.0.12:8080 cache=HIT request_id=5f2b9a7c1e"
	ev.Raw = RFC5424.Append(nil, ev)
	return ev
}

func BenchmarkAppend(b *testing.B) {
	for _, f := range []Format{Raw, RFC5424, JSON} {
		for _, sd := range []bool{false, true} {
			name := f.String()
			if sd {
				name += "/sd"
			}
			b.Run(name, func(b *testing.B) {
				ev := benchEvent()
				if !sd {
					ev.SD = nil
				}
				buf := make([]byte, 0, 4096)
				b.SetBytes(int64(len(f.Append(nil, ev))))
				b.ReportAllocs()
				for b.Loop() {
					buf = f.Append(buf[:0], ev)
				}
			})
		}
	}
}

func BenchmarkDecodeJSON(b *testing.B) {
	line := JSON.Append(nil, benchEvent())
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeJSON(line); err != nil {
			b.Fatal(err)
		}
	}
}

// sdEqual compares structured data element by element, in order; nil and
// empty parameter lists are equal.
func sdEqual(a, b event.StructuredData) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || len(a[i].Params) != len(b[i].Params) {
			return false
		}
		for j := range a[i].Params {
			if a[i].Params[j] != b[i].Params[j] {
				return false
			}
		}
	}
	return true
}

// sdMap is sd in go-syslog's nested-map form.
func sdMap(sd event.StructuredData) map[string]map[string]string {
	if sd == nil {
		return nil
	}
	m := map[string]map[string]string{}
	for _, el := range sd {
		p := map[string]string{}
		for _, kv := range el.Params {
			p[kv.Name] = kv.Value
		}
		m[el.ID] = p
	}
	return m
}
