package rules

import (
	"slices"
	"testing"

	"github.com/sluicelog/sluice/router/event"
)

func TestTableRoute(t *testing.T) {
	auth := mustCompile(t, `facility == "auth"`)
	sev3 := mustCompile(t, `severity <= 3`)
	web := mustCompile(t, `startswith(host, "web-")`)
	never := mustCompile(t, `false`)

	cases := []struct {
		name        string
		routes      []Route
		unmatched   []int
		ev          *event.Event
		wantOuts    []int
		wantMatched []int
		wantNone    bool
	}{
		{
			name:        "first match wins",
			routes:      []Route{{When: auth, Outputs: []int{0}}, {When: sev3, Outputs: []int{1}}},
			ev:          evAuth,
			wantOuts:    []int{0},
			wantMatched: []int{0},
		},
		{
			name:        "later route when the first does not match",
			routes:      []Route{{When: auth, Outputs: []int{0}}, {When: web, Outputs: []int{1}}},
			ev:          evMapped, // authpriv, web-10
			wantOuts:    []int{1},
			wantMatched: []int{1},
		},
		{
			name:        "nil When matches everything",
			routes:      []Route{{When: never, Outputs: []int{0}}, {Outputs: []int{2}}},
			ev:          evZero,
			wantOuts:    []int{2},
			wantMatched: []int{1},
		},
		{
			name: "continue keeps evaluating",
			routes: []Route{
				{When: auth, Outputs: []int{0}, Continue: true},
				{When: never, Outputs: []int{3}},
				{When: sev3, Outputs: []int{1}, Continue: true},
				{When: web, Outputs: []int{2}},
				{Outputs: []int{4}},
			},
			ev:          evAuth,
			wantOuts:    []int{0, 1, 2},
			wantMatched: []int{0, 2, 3},
		},
		{
			name: "continue to the end",
			routes: []Route{
				{When: auth, Outputs: []int{0}, Continue: true},
				{When: sev3, Outputs: []int{1}, Continue: true},
			},
			unmatched:   []int{9},
			ev:          evAuth,
			wantOuts:    []int{0, 1},
			wantMatched: []int{0, 1},
		},
		{
			name: "dedup across routes, first-seen order",
			routes: []Route{
				{When: auth, Outputs: []int{2, 0, 2}, Continue: true},
				{When: sev3, Outputs: []int{0, 1, 2}},
			},
			ev:          evAuth,
			wantOuts:    []int{2, 0, 1},
			wantMatched: []int{0, 1},
		},
		{
			name:        "drop stops evaluation",
			routes:      []Route{{When: auth, Drop: true}, {Outputs: []int{0}}},
			unmatched:   []int{1},
			ev:          evAuth,
			wantOuts:    nil,
			wantMatched: []int{0},
		},
		{
			name:        "drop wins over outputs and continue",
			routes:      []Route{{When: auth, Drop: true, Continue: true, Outputs: []int{5}}, {Outputs: []int{0}}},
			ev:          evAuth,
			wantOuts:    nil,
			wantMatched: []int{0},
		},
		{
			name:        "empty outputs is a drop",
			routes:      []Route{{When: auth, Continue: true}, {Outputs: []int{0}}},
			unmatched:   []int{1},
			ev:          evAuth,
			wantOuts:    nil,
			wantMatched: []int{0},
		},
		{
			name: "drop after continue keeps the earlier outputs",
			routes: []Route{
				{When: sev3, Outputs: []int{0, 1}, Continue: true},
				{When: auth, Drop: true},
				{Outputs: []int{2}},
			},
			ev:          evAuth,
			wantOuts:    []int{0, 1},
			wantMatched: []int{0, 1},
		},
		{
			name:        "unmatched goes to the unmatched outputs, deduplicated",
			routes:      []Route{{When: auth, Outputs: []int{0}}},
			unmatched:   []int{3, 4, 3},
			ev:          evV6,
			wantOuts:    []int{3, 4},
			wantMatched: nil,
			wantNone:    true,
		},
		{
			name:        "unmatched with no unmatched outputs is dropped",
			routes:      []Route{{When: auth, Outputs: []int{0}}},
			ev:          evV6,
			wantOuts:    nil,
			wantMatched: nil,
			wantNone:    true,
		},
		{
			name:     "empty table",
			ev:       evV6,
			wantOuts: nil, wantMatched: nil, wantNone: true,
		},
		{
			name:      "empty table with unmatched outputs",
			unmatched: []int{7},
			ev:        evV6,
			wantOuts:  []int{7}, wantMatched: nil, wantNone: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tab := NewTable(tc.routes, tc.unmatched)
			if tab.Len() != len(tc.routes) {
				t.Errorf("Len = %d", tab.Len())
			}
			outs, matched, none := tab.Route(tc.ev, nil, nil)
			if !slices.Equal(outs, tc.wantOuts) || !slices.Equal(matched, tc.wantMatched) || none != tc.wantNone {
				t.Errorf("got outs %v matched %v none %v; want %v %v %v",
					outs, matched, none, tc.wantOuts, tc.wantMatched, tc.wantNone)
			}
			// Appending after existing contents: earlier contents are kept and
			// not used for deduplication.
			outs, matched, _ = tab.Route(tc.ev, []int{0, 1, 2, 3}, []int{-1})
			if !slices.Equal(outs[:4], []int{0, 1, 2, 3}) || !slices.Equal(outs[4:], tc.wantOuts) {
				t.Errorf("with prefix: outs %v", outs)
			}
			if matched[0] != -1 || !slices.Equal(matched[1:], tc.wantMatched) {
				t.Errorf("with prefix: matched %v", matched)
			}
		})
	}
}

func TestNewTableCopies(t *testing.T) {
	routes := []Route{{Outputs: []int{1, 2}}}
	unmatched := []int{5}
	tab := NewTable(routes, unmatched)
	routes[0].Outputs[0] = 9
	routes[0].Drop = true
	unmatched[0] = 9
	if outs, _, _ := tab.Route(evZero, nil, nil); !slices.Equal(outs, []int{1, 2}) {
		t.Errorf("table changed with its input: %v", outs)
	}
	tab = NewTable(nil, unmatched)
	unmatched[0] = 8
	if outs, _, _ := tab.Route(evZero, nil, nil); !slices.Equal(outs, []int{9}) {
		t.Errorf("table changed with its input: %v", outs)
	}
}

// benchRoutes is a realistic 10-route table: facility/severity comparisons,
// host equality, startswith, contains, regexmatch on app, cidrcontains on
// origin, and continue routes.
var benchRoutes = []struct {
	when     string
	outs     []int
	cont     bool
	drop     bool
	unusable bool
}{
	{when: `severity >= 0 && severity <= "crit"`, outs: []int{0}, cont: true},                                    // page on-call, and keep routing
	{when: `host == "noisy-box" && severity >= "info"`, drop: true},                                              // drop chatter
	{when: `contains(["auth", "authpriv"], facility) || regexmatch(app, "^(sshd|sudo|su)$")`, outs: []int{1, 2}}, // security
	{when: `stream == "nginx_access" && startswith(message, "GET /healthz")`, drop: true},
	{when: `stream == "nginx_access"`, outs: []int{3}},
	{when: `cidrcontains("10.20.0.0/16", origin) && severity <= "warning"`, outs: []int{4}, cont: true},
	{when: `startswith(host, "db-") && facility == "local0"`, outs: []int{5}},
	{when: `input == "apps" && msgid != "-" && sd["meta"]["env"] == "prod"`, outs: []int{6}},
	{when: `facility >= "local0" && severity <= 5`, outs: []int{2}},
	{when: `severity == -1 || host == ""`, outs: []int{7}},
}

var benchEvents = []*event.Event{
	{Input: "edge", Stream: "syslog", Origin: "10.20.3.4:5514", Facility: 4, Severity: 5, Host: "web-3", App: "sshd", ProcID: "812", MsgID: "-", Message: "Accepted publickey for deploy"},
	{Input: "nginx", Stream: "nginx_access", Origin: "/var/log/nginx/access.log", Facility: -1, Severity: -1, Host: "web-3", App: "nginx", Message: "GET /healthz HTTP/1.1 200"},
	{Input: "nginx", Stream: "nginx_access", Origin: "/var/log/nginx/access.log", Facility: -1, Severity: -1, Host: "web-3", App: "nginx", Message: "GET /api/v1/items HTTP/1.1 200"},
	{Input: "edge", Stream: "syslog", Origin: "10.30.1.9:40112", Facility: 16, Severity: 6, Host: "db-2", App: "postgres", ProcID: "77", MsgID: "-", Message: "checkpoint complete"},
	{Input: "edge", Stream: "syslog", Origin: "10.20.9.9:514", Facility: 3, Severity: 6, Host: "noisy-box", App: "systemd", Message: "Started session 42"},
	{Input: "apps", Stream: "syslog", Origin: "[2001:db8::5]:601", Facility: 1, Severity: 4, Host: "api-1", App: "billing", MsgID: "INV", Message: "slow invoice",
		SD: event.SDFromMap(map[string]map[string]string{"meta": {"env": "prod"}})},
	{Input: "edge", Stream: "syslog", Origin: "192.0.2.1:514", Facility: 18, Severity: 2, Host: "fw-1", App: "kernel", Message: "link down"},
	{Input: "edge", Stream: "syslog", Origin: "10.20.0.1:514", Facility: 1, Severity: 4, Host: "web-9", App: "cron", Message: "job failed"},
	{Input: "edge", Stream: "syslog", Origin: "192.0.2.9:514", Facility: 2, Severity: 6, Host: "mail-1", App: "postfix", MsgID: "-", Message: "queue run"},
}

func benchTable(t testing.TB) *Table {
	routes := make([]Route, len(benchRoutes))
	for i, r := range benchRoutes {
		routes[i] = Route{Name: r.when, When: mustCompile(t, r.when), Outputs: r.outs, Drop: r.drop, Continue: r.cont}
	}
	return NewTable(routes, []int{8})
}

func TestTableRouteAllocs(t *testing.T) {
	tab := benchTable(t)
	if tab.Len() != 10 {
		t.Fatalf("bench table has %d routes", tab.Len())
	}
	outs, matched := make([]int, 0, 16), make([]int, 0, 16)
	var none bool
	allocs := testing.AllocsPerRun(100, func() {
		for _, ev := range benchEvents {
			outs, matched, none = tab.Route(ev, outs[:0], matched[:0])
		}
	})
	_ = none
	if allocs != 0 {
		t.Fatalf("Table.Route allocates %.1f times per %d events", allocs, len(benchEvents))
	}
}

func TestBenchTableResults(t *testing.T) {
	// Pin down what the benchmark table does, so the benchmark measures
	// real work rather than an accident.
	tab := benchTable(t)
	want := []struct {
		outs, matched []int
		none          bool
	}{
		{[]int{1, 2}, []int{2}, false},    // sshd, auth
		{nil, []int{3}, false},            // healthz dropped
		{[]int{3}, []int{4}, false},       // nginx access
		{[]int{5}, []int{6}, false},       // db-2 local0
		{nil, []int{1}, false},            // noisy-box dropped
		{[]int{6}, []int{7}, false},       // apps prod
		{[]int{0, 2}, []int{0, 8}, false}, // crit: page, then local2
		{[]int{4}, []int{5}, false},       // 10.20/16 warning
		{[]int{8}, []int(nil), true},      // unmatched
	}
	for i, ev := range benchEvents {
		outs, matched, none := tab.Route(ev, nil, nil)
		if !slices.Equal(outs, want[i].outs) || !slices.Equal(matched, want[i].matched) || none != want[i].none {
			t.Errorf("event %d: got %v %v %v, want %v %v %v", i, outs, matched, none, want[i].outs, want[i].matched, want[i].none)
		}
	}
}

func BenchmarkTable10Routes(b *testing.B) {
	tab := benchTable(b)
	outs, matched := make([]int, 0, 16), make([]int, 0, 16)
	n := len(benchEvents)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		outs, matched, _ = tab.Route(benchEvents[i%n], outs[:0], matched[:0])
	}
}

func BenchmarkPredicates(b *testing.B) {
	for _, src := range []string{
		`severity <= 3 && app == "nginx"`,
		`facility == "auth" || (severity <= 3 && host != "noisy-box")`,
		`contains(["auth", "authpriv"], facility)`,
		`contains(["web-1", "web-2", "web-3"], host)`,
		`regexmatch(app, "^(sshd|sudo|su)$")`,
		`regexmatch(app, "^ss[a-z]+d$")`,
		`regexmatch(message, "password for [a-z]+ from")`,
		`cidrcontains("10.0.0.0/8", origin)`,
		`startswith(message, "Failed")`,
		`sd["origin"]["ip"] == "10.1.2.3"`,
		`strcontains(lower(message), "failed")`,
	} {
		b.Run(src, func(b *testing.B) {
			p := mustCompile(b, src)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				p(testEvents[i%len(testEvents)])
			}
		})
	}
}
