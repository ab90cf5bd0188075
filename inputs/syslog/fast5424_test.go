package syslog

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/sluicelog/sluice/router/event"
)

var fast5424Seeds = []string{
	`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry...`,
	`<13>1 2026-11-22T10:00:00.123456+01:00 host app 123 MSG - hello world`,
	`<13>1 2026-11-22T10:00:00-07:30 host app 123 MSG -`,
	`<0>1 - - - - - -`,
	`<191>1 2026-02-28T23:59:59Z h a p m [a b="x\"y\\z\]w"][c@1 d=""] msg with ] and "`,
	`<13>1 2026-02-30T00:00:00Z h a p m - bad day`,
	`<13>1 2026-11-22T24:00:00Z h a p m - bad hour`,
	`<13>1 2026-11-22T10:00:00.1234567Z h a p m - too many fraction digits`,
	`<013>1 - h a p m - leading zero`,
	`<192>1 - h a p m - pri too big`,
	`<13>2 - h a p m - version 2`,
	`<13>1 - h a p m [dup a="1"][dup b="2"] duplicate id`,
	`<13>1 - h a p m [x a="1" a="2"] duplicate param`,
	`<13>1 - h a p m [x a="\n"] bad escape`,
	`<13>1 - h a p m -` + "\xef\xbb\xbf" + `bom`,
	`<13>1 - h a p m -x`,
	`<13>1 - h a p m`,
	`<13>1 - h a p m - ` + "\xff\xfe non-utf8",
	`<13>1 2026-11-22T10:00:60Z h a p m - leap second`,
	`<13>1 - ` + string(make([]byte, 10)) + ` a p m - nul in host`,
}

func goSyslogStrict(frame []byte) (*rfc5424.SyslogMessage, bool) {
	m, err := rfc5424.NewMachine().Parse(frame)
	if err != nil {
		return nil, false
	}
	sm, ok := m.(*rfc5424.SyslogMessage)
	return sm, ok
}

// checkAgainstGoSyslog fails if fast5424 accepts frame but go-syslog's
// strict machine rejects it or disagrees on any field.
func checkAgainstGoSyslog(t *testing.T, frame []byte) bool {
	t.Helper()
	var ev event.Event
	if !fast5424(&ev, frame, newFastState()) {
		return false
	}
	ref, ok := goSyslogStrict(frame)
	if !ok {
		t.Fatalf("fast path accepted %q, go-syslog rejects it", frame)
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	if int(ev.Facility) != int(*ref.Facility) || int(ev.Severity) != int(*ref.Severity) {
		t.Fatalf("%q: PRI %d/%d, go-syslog %d/%d", frame, ev.Facility, ev.Severity, *ref.Facility, *ref.Severity)
	}
	for _, f := range []struct{ name, got, want string }{
		{"host", ev.Host, str(ref.Hostname)}, {"app", ev.App, str(ref.Appname)},
		{"procid", ev.ProcID, str(ref.ProcID)}, {"msgid", ev.MsgID, str(ref.MsgID)},
		{"message", ev.Message, str(ref.Message)},
	} {
		if f.got != f.want {
			t.Fatalf("%q: %s = %q, go-syslog %q", frame, f.name, f.got, f.want)
		}
	}
	switch {
	case ref.Timestamp == nil && !ev.Time.IsZero():
		t.Fatalf("%q: time %v, go-syslog none", frame, ev.Time)
	case ref.Timestamp != nil && !ref.Timestamp.Equal(ev.Time):
		t.Fatalf("%q: time %v, go-syslog %v", frame, ev.Time, *ref.Timestamp)
	case ref.Timestamp != nil:
		_, o1 := ev.Time.Zone()
		_, o2 := ref.Timestamp.Zone()
		if o1 != o2 {
			t.Fatalf("%q: offset %d, go-syslog %d", frame, o1, o2)
		}
	}
	var want map[string]map[string]string
	if ref.StructuredData != nil && len(*ref.StructuredData) > 0 {
		want = *ref.StructuredData
	}
	got := map[string]map[string]string{}
	for _, el := range ev.SD {
		got[el.ID] = map[string]string{}
		for _, p := range el.Params {
			got[el.ID][p.Name] = p.Value
		}
	}
	if len(got) != 0 || len(want) != 0 {
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: sd %v, go-syslog %v", frame, got, want)
		}
	}
	return true
}

func TestFast5424MatchesGoSyslog(t *testing.T) {
	accepted := 0
	for _, s := range fast5424Seeds {
		if checkAgainstGoSyslog(t, []byte(s)) {
			accepted++
		}
	}
	// The first five seeds are well-formed and must take the fast path.
	for _, s := range fast5424Seeds[:5] {
		var ev event.Event
		if !fast5424(&ev, []byte(s), newFastState()) {
			t.Errorf("fast path rejected well-formed %q", s)
		}
	}
	if accepted < 5 {
		t.Errorf("fast path accepted %d seeds", accepted)
	}
}

func TestFast5424Fields(t *testing.T) {
	var ev event.Event
	frame := []byte(`<165>1 2003-10-11T22:14:15.003-07:00 mymachine evntslog 42 ID47 [ex@1 iut="3" v="a\]b"] hello`)
	if !fast5424(&ev, frame, newFastState()) {
		t.Fatal("rejected")
	}
	want := time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.FixedZone("", -7*3600))
	if ev.Facility != 20 || ev.Severity != 5 || ev.Host != "mymachine" || ev.App != "evntslog" ||
		ev.ProcID != "42" || ev.MsgID != "ID47" || ev.Message != "hello" || !ev.Time.Equal(want) ||
		len(ev.SD) != 1 || ev.SD[0].ID != "ex@1" || len(ev.SD[0].Params) != 2 ||
		ev.SD[0].Params[0] != (event.SDParam{Name: "iut", Value: "3"}) || ev.SD[0].Params[1] != (event.SDParam{Name: "v", Value: "a]b"}) {
		t.Fatalf("parsed %+v", ev)
	}
}

func FuzzFast5424MatchesGoSyslog(f *testing.F) {
	for _, s := range fast5424Seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		checkAgainstGoSyslog(t, frame)
	})
}

func BenchmarkParse5424FastPath(b *testing.B) {
	frame := []byte(`<134>1 2026-11-22T10:00:00.000001Z web-01.example.net nginx 1001 ID1 [meta seq="1" zone="eu-west-1"] request handled path=/api/v1/items/1 status=200 bytes=513 dur_ms=1 user_agent="Mozilla/5.0 (X11; Linux x86_64)" xxxxxxxxxxxxxxxxxxxx`)
	st := newFastState()
	b.ReportAllocs()
	for b.Loop() {
		var ev event.Event
		if !fast5424(&ev, frame, st) {
			b.Fatal("rejected")
		}
	}
}

// SD is carved from slabs shared by consecutive events: parsing more
// messages (and crossing slab boundaries) must never change an earlier
// event's SD.
func TestFast5424SDSlabsNeverRewritten(t *testing.T) {
	st := newFastState()
	var evs []*event.Event
	for i := range 3 * sdSlabLen {
		frame := []byte(fmt.Sprintf(`<13>1 - h a - - [e%d x="%d" y="v%d"][f z="%d"] m`, i, i, i, i))
		ev := &event.Event{}
		if !fast5424(ev, frame, st) {
			t.Fatalf("rejected %q", frame)
		}
		evs = append(evs, ev)
	}
	for i, ev := range evs {
		want := fmt.Sprint(i)
		if got, _ := ev.SD.Get(fmt.Sprintf("e%d", i), "x"); got != want {
			t.Fatalf("event %d: x = %q, want %q", i, got, want)
		}
		if got, _ := ev.SD.Get("f", "z"); got != want || len(ev.SD) != 2 || cap(ev.SD) != 2 || cap(ev.SD[0].Params) != 2 {
			t.Fatalf("event %d: SD %+v (caps %d, %d) changed or can grow into a neighbour", i, ev.SD, cap(ev.SD), cap(ev.SD[0].Params))
		}
	}
}
