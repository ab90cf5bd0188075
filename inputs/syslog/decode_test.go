package syslog

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/router/event"
)

var recv0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func decodeOne(t *testing.T, format, frame string, recv time.Time) (*event.Event, bool) {
	t.Helper()
	d := newDecoder(format, time.UTC, "in", "st")
	var b batch
	b.add(d, []byte(frame), recv, "192.0.2.1:514", "192.0.2.1")
	fails := b.fails
	evs := b.take().evs
	if len(evs) != 1 {
		t.Fatalf("got %d events", len(evs))
	}
	return evs[0], fails > 0
}

func TestDecode5424WithSD(t *testing.T) {
	frame := `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 42 ID47 [exampleSDID@32473 iut="3" eventSource="Application"][other@1 a="b"] An application event`
	ev, failed := decodeOne(t, "auto", frame, recv0)
	if failed {
		t.Fatal("reported as a parse failure")
	}
	want := &event.Event{
		Received: recv0,
		Time:     time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC),
		Input:    "in", Stream: "st", Origin: "192.0.2.1:514",
		Facility: 20, Severity: 5,
		Host: "mymachine.example.com", App: "evntslog", ProcID: "42", MsgID: "ID47",
		Message: "An application event",
		SD: event.StructuredData{ // in the order received
			{ID: "exampleSDID@32473", Params: []event.SDParam{{Name: "iut", Value: "3"}, {Name: "eventSource", Value: "Application"}}},
			{ID: "other@1", Params: []event.SDParam{{Name: "a", Value: "b"}}},
		},
		Raw: []byte(frame),
	}
	if !ev.Time.Equal(want.Time) {
		t.Errorf("Time = %v, want %v", ev.Time, want.Time)
	}
	ev.Time = want.Time
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("event\n got %+v\nwant %+v", ev, want)
	}
	for _, format := range []string{"rfc5424", "auto"} {
		ev, failed := decodeOne(t, format, frame, recv0)
		if failed || ev.App != "evntslog" || len(ev.SD) != 2 {
			t.Errorf("%s: failed=%v app=%q sd=%v", format, failed, ev.App, ev.SD)
		}
	}
}

func TestDecode3164(t *testing.T) {
	cases := []struct {
		frame           string
		host, app, proc string
		msg             string
		time            time.Time
	}{
		{"<34>Oct 11 22:14:15 mymachine su: 'su root' failed", "mymachine", "su", "", "'su root' failed",
			time.Date(2026, 10, 11, 22, 14, 15, 0, time.UTC)},
		{"<30>Jun 23 13:17:42 chronyd[1119]: no host here", "192.0.2.1", "chronyd", "1119", "no host here",
			time.Date(2026, 6, 23, 13, 17, 42, 0, time.UTC)},
		{"<30>Jun 03 13:17:42.250 web1 nginx[7]: lenient day, fractions", "web1", "nginx", "7", "lenient day, fractions",
			time.Date(2026, 6, 3, 13, 17, 42, 250e6, time.UTC)},
		{"<30>2026-06-03T13:17:42+02:00 web1 nginx: rfc3339 stamp", "web1", "nginx", "", "rfc3339 stamp",
			time.Date(2026, 6, 3, 11, 17, 42, 0, time.UTC)},
	}
	for _, format := range []string{"auto", "rfc3164"} {
		for _, tc := range cases {
			ev, failed := decodeOne(t, format, tc.frame, recv0)
			if failed {
				t.Errorf("%s %q: parse failure", format, tc.frame)
			}
			if ev.Host != tc.host || ev.App != tc.app || ev.ProcID != tc.proc || ev.Message != tc.msg || !ev.Time.Equal(tc.time) {
				t.Errorf("%s %q:\n got host=%q app=%q proc=%q msg=%q time=%v\nwant host=%q app=%q proc=%q msg=%q time=%v",
					format, tc.frame, ev.Host, ev.App, ev.ProcID, ev.Message, ev.Time, tc.host, tc.app, tc.proc, tc.msg, tc.time)
			}
			if ev.Facility != event.Facility(int(tc.frame[1]-'0')*10+int(tc.frame[2]-'0'))/8 {
				t.Errorf("%q: facility %d", tc.frame, ev.Facility)
			}
		}
	}
}

func TestDecode3164Timezone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	d := newDecoder("auto", ny, "in", "st")
	var ev event.Event
	d.decode(&ev, []byte("<13>Jul  4 12:00:00 host app: x"), recv0)
	if want := time.Date(2026, 7, 4, 16, 0, 0, 0, time.UTC); !ev.Time.Equal(want) {
		t.Errorf("time = %v, want %v", ev.Time.UTC(), want)
	}
	d.decode(&ev, []byte("<13>Jan  4 12:00:00 host app: x"), recv0)
	if want := time.Date(2026, 1, 4, 17, 0, 0, 0, time.UTC); !ev.Time.Equal(want) {
		t.Errorf("time = %v, want %v", ev.Time.UTC(), want)
	}
}

func TestYearInference(t *testing.T) {
	at := func(y int, m time.Month, d, h, mi, s int) time.Time { return time.Date(y, m, d, h, mi, s, 0, time.UTC) }
	cases := []struct {
		stamp string
		recv  time.Time
		want  time.Time
	}{
		{"Dec 31 23:59:59", at(2027, 1, 1, 0, 0, 10), at(2026, 12, 31, 23, 59, 59)},
		{"Dec 20 10:00:00", at(2027, 1, 10, 0, 0, 0), at(2026, 12, 20, 10, 0, 0)},
		{"Jan  1 00:00:05", at(2026, 12, 31, 23, 59, 50), at(2027, 1, 1, 0, 0, 5)},
		{"Jun 14 08:00:00", at(2026, 6, 15, 0, 0, 0), at(2026, 6, 14, 8, 0, 0)},
		{"Jul 10 08:00:00", at(2026, 6, 15, 0, 0, 0), at(2026, 7, 10, 8, 0, 0)},
		{"Aug  1 08:00:00", at(2026, 6, 15, 0, 0, 0), at(2025, 8, 1, 8, 0, 0)},
		{"Jan 15 08:00:00", at(2026, 1, 10, 0, 0, 0), at(2026, 1, 15, 8, 0, 0)},
		{"Feb 29 12:00:00", at(2026, 3, 1, 0, 0, 0), at(2024, 2, 29, 12, 0, 0)},
		{"Feb 29 12:00:00", at(2028, 3, 1, 0, 0, 0), at(2028, 2, 29, 12, 0, 0)},
	}
	d := newDecoder("auto", time.UTC, "in", "st")
	for _, tc := range cases {
		var ev event.Event
		if d.decode(&ev, []byte("<13>"+tc.stamp+" host app: x"), tc.recv) {
			t.Errorf("%s: parse failure", tc.stamp)
		}
		if !ev.Time.Equal(tc.want) {
			t.Errorf("%q received %v: time %v, want %v", tc.stamp, tc.recv, ev.Time, tc.want)
		}
	}
}

func TestDecodeUnparseable(t *testing.T) {
	m := inputs.NewDiscardMetrics()
	var got []*event.Event
	sink := inputs.SinkFunc(func(_ context.Context, evs []*event.Event) error {
		got = append(got, evs...)
		return nil
	})
	d := newDecoder("auto", time.UTC, "in", "st")
	var b batch
	frames := []string{"hello world \xff\xfe", "<13>1 2003-10-11T22:14:15.003Z host app - - - ok", "<999>nope", "<30>User logged in"}
	for _, f := range frames {
		b.add(d, []byte(f), recv0, "192.0.2.1:514", "192.0.2.1")
	}
	if err := b.flush(context.Background(), sink, m); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(frames) {
		t.Fatalf("got %d events", len(got))
	}
	if n := testutil.ToFloat64(m.ParseFailures); n != 3 {
		t.Errorf("ParseFailures = %v, want 3", n)
	}
	if n := testutil.ToFloat64(m.Events); n != 4 {
		t.Errorf("Events = %v, want 4", n)
	}
	var raw int
	for i, ev := range got {
		raw += len(ev.Raw)
		if string(ev.Raw) != frames[i] {
			t.Errorf("Raw %q, want %q", ev.Raw, frames[i])
		}
		if cap(ev.Raw) != len(ev.Raw) {
			t.Errorf("Raw of event %d has spare capacity: appending would write into its neighbour", i)
		}
	}
	if n := testutil.ToFloat64(m.Bytes); n != float64(raw) {
		t.Errorf("Bytes = %v, want %d", n, raw)
	}
	g := got[0]
	if g.Message != frames[0] || g.Facility != -1 || g.Severity != -1 || g.Host != "192.0.2.1" || !g.Time.Equal(recv0) {
		t.Errorf("unparseable: %+v", g)
	}
	if got[1].Message != "ok" || got[1].Facility != 1 || got[1].Severity != 5 {
		t.Errorf("valid: %+v", got[1])
	}
	if got[2].Message != "<999>nope" || got[2].Facility != -1 {
		t.Errorf("bad PRI: %+v", got[2])
	}
	if got[3].Message != "<30>User logged in" || got[3].Facility != 3 || got[3].Severity != 6 {
		t.Errorf("PRI only: %+v", got[3])
	}
}

func TestDecodeNonUTF8(t *testing.T) {
	frame := "<13>1 2003-10-11T22:14:15.003Z host app - - - bad \xff\xfe\xc3( bytes"
	ev, _ := decodeOne(t, "auto", frame, recv0)
	if string(ev.Raw) != frame {
		t.Errorf("Raw = %q", ev.Raw)
	}
	if ev.Message != "bad \xff\xfe\xc3( bytes" {
		t.Errorf("Message = %q", ev.Message)
	}
}

func TestDecodeRaw(t *testing.T) {
	frame := "<13>1 2003-10-11T22:14:15.003Z host app - - - hi"
	ev, failed := decodeOne(t, "raw", frame, recv0)
	if failed || ev.Message != frame || ev.App != "" || ev.Facility != -1 || ev.Host != "192.0.2.1" || !ev.Time.Equal(recv0) {
		t.Errorf("raw: failed=%v %+v", failed, ev)
	}
}

func TestParsePRI(t *testing.T) {
	for in, want := range map[string]int{"<0>": 0, "<13>x": 13, "<191>": 191, "<192>": -1, "<>": -1, "<1234>": -1, "13>": -1, "<1a>": -1, "<13": -1} {
		got, ok := parsePRI([]byte(in))
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("parsePRI(%q) = %d, want %d", in, got, want)
		}
	}
}
