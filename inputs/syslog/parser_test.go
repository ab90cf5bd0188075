package syslog

import (
	"testing"
	"time"

	"github.com/sluicelog/sluice/router/event"
)

func TestParserExported(t *testing.T) {
	recv := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		format, frame, host, app, msg string
		sev                           event.Severity
		failed                        bool
	}{
		{"auto", `<165>1 2003-10-11T22:14:15.003Z mymachine evntslog 42 ID47 - hello`, "mymachine", "evntslog", "hello", 5, false},
		{"auto", `<13>Oct 11 22:14:15 host app: classic`, "host", "app", "classic", 5, false},
		{"rfc5424", `not syslog at all`, "", "", "not syslog at all", -1, true},
	}
	for _, tt := range tests {
		p := NewParser(tt.format, nil, "z", "st")
		ev := &event.Event{Raw: []byte(tt.frame)}
		failed := p.Parse(ev, ev.Raw, recv)
		if failed != tt.failed || ev.Host != tt.host || ev.App != tt.app || ev.Message != tt.msg || ev.Severity != tt.sev ||
			ev.Input != "z" || ev.Stream != "st" || !ev.Received.Equal(recv) {
			t.Errorf("%s %q: failed=%v %+v", tt.format, tt.frame, failed, ev)
		}
	}
}
