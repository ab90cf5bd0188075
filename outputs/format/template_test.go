package format

import (
	"strings"
	"testing"

	"github.com/sluicelog/sluice/router/event"
)

func TestTemplate(t *testing.T) {
	ev := &event.Event{Stream: "nginx", Host: "web-1", App: "api", Facility: 3, Severity: 3, Input: "in", Origin: "10.0.0.1:5", ProcID: "7", MsgID: "M"}
	unknown := &event.Event{Stream: "s", Facility: -1, Severity: -1}
	tests := []struct {
		src, want, wantUnknown string
		literal                bool
		err                    string
	}{
		{"{stream}.{severity}", "nginx.err", "s.", false, ""},
		{"{host}/{app}/{procid}/{msgid}/{facility}/{input}/{origin}", "web-1/api/7/M/daemon/in/10.0.0.1:5", "//////", false, ""},
		{"syslog", "syslog", "syslog", true, ""},
		{"", "", "", true, ""},
		{"{appname}", "", "", false, "unknown field {appname}"},
		{"a}b", "", "", false, `unmatched "}"`},
		{"a{host", "", "", false, `unterminated "{"`},
	}
	for _, tt := range tests {
		tmpl, err := CompileTemplate(tt.src)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v; want %q", tt.src, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.src, err)
		}
		if got := string(tmpl.Append(nil, ev)); got != tt.want {
			t.Errorf("%q: %q; want %q", tt.src, got, tt.want)
		}
		if got := string(tmpl.Append([]byte("x"), unknown)); got != "x"+tt.wantUnknown {
			t.Errorf("%q unknown fields: %q; want %q", tt.src, got, "x"+tt.wantUnknown)
		}
		if tmpl.Literal() != tt.literal {
			t.Errorf("%q: Literal() = %v", tt.src, tmpl.Literal())
		}
	}
}
