package rules

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/sluicelog/sluice/router/event"
)

// Test events. They are shared read-only by all tests.
var (
	evAuth = &event.Event{
		Input: "edge", Stream: "syslog", Origin: "10.1.2.3:5514",
		Facility: 4, Severity: 3, Host: "web-1", App: "sshd", ProcID: "123", MsgID: "ID47",
		Message: "Failed password for root from 192.0.2.7",
		SD:      event.SDFromMap(map[string]map[string]string{"origin": {"ip": "10.1.2.3", "software": "rsyslogd"}, "meta@32473": {"sequenceId": "7"}}),
	}
	evFile = &event.Event{
		Input: "nginx", Stream: "nginx_access", Origin: "/var/log/nginx/access.log",
		Facility: -1, Severity: -1, Host: "noisy-box", App: "nginx",
		Message: "GET /healthz HTTP/1.1 200",
	}
	evV6 = &event.Event{
		Input: "edge", Stream: "syslog", Origin: "[2001:db8::17]:601",
		Facility: 16, Severity: 6, Host: "DB-2", App: "postgres", ProcID: "9", MsgID: "-",
		Message: "checkpoint complete",
	}
	evMapped = &event.Event{Origin: "::ffff:10.9.8.7", Facility: 10, Severity: 4, App: "sudo", Host: "web-10"}
	evZero   = &event.Event{}
)

var testEvents = []*event.Event{evAuth, evFile, evV6, evMapped, evZero}

func parse(t testing.TB, src string) hclsyntax.Expression {
	t.Helper()
	expr, diags := hclsyntax.ParseExpression([]byte(src), "test.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parse %q: %s", src, diags.Error())
	}
	return expr
}

func mustCompile(t testing.TB, src string) Predicate {
	t.Helper()
	p, diags := Compile(parse(t, src))
	if diags.HasErrors() {
		t.Fatalf("compile %q: %s", src, diags.Error())
	}
	if p == nil {
		t.Fatalf("compile %q: nil predicate without errors", src)
	}
	return p
}

type evalCase struct {
	src  string
	ev   *event.Event
	want bool
}

func runEvalCases(t *testing.T, cases []evalCase) {
	t.Helper()
	for _, tc := range cases {
		p := mustCompile(t, tc.src)
		if got := p(tc.ev); got != tc.want {
			t.Errorf("%s on %+v: got %v, want %v", tc.src, *tc.ev, got, tc.want)
		}
	}
}

func TestFields(t *testing.T) {
	runEvalCases(t, []evalCase{
		{`input == "edge"`, evAuth, true},
		{`input == "edge"`, evFile, false},
		{`stream == "nginx_access"`, evFile, true},
		{`origin == "10.1.2.3:5514"`, evAuth, true},
		{`host == "web-1"`, evAuth, true},
		{`app == "sshd"`, evAuth, true},
		{`procid == "123"`, evAuth, true},
		{`msgid == "ID47"`, evAuth, true},
		{`message == "checkpoint complete"`, evV6, true},
		{`facility == 4`, evAuth, true},
		{`severity == 3`, evAuth, true},
		{`severity == -1`, evFile, true},
		{`facility == -1`, evFile, true},
		{`sd["origin"]["ip"] == "10.1.2.3"`, evAuth, true},
		{`sd["meta@32473"]["sequenceId"] == "7"`, evAuth, true},
		{`sd.origin.software == "rsyslogd"`, evAuth, true},
		{`sd["origin"]["nope"] == ""`, evAuth, true},
		{`sd["nope"]["ip"] == ""`, evAuth, true},
		{`sd["origin"]["ip"] == ""`, evFile, true}, // nil SD
		{`host == ""`, evZero, true},
		{`sd["origin"][("ip")] == "10.1.2.3"`, evAuth, true}, // constant key in parentheses
	})
}

func TestOperators(t *testing.T) {
	runEvalCases(t, []evalCase{
		// == and != on strings, numbers, bools
		{`host == "web-1"`, evAuth, true},
		{`"web-1" == host`, evAuth, true},
		{`host != "web-1"`, evAuth, false},
		{`host != "web-1"`, evFile, true},
		{`host == app`, evAuth, false},
		{`host != app`, evAuth, true},
		{`lower(host) == "db-2"`, evV6, true},
		{`lower(host) != "db-2"`, evV6, false},
		{`"db-2" == lower(host)`, evV6, true},
		{`"a" == "a"`, evZero, true},
		{`"a" != "a"`, evZero, false},
		{`severity == facility`, evZero, true},
		{`severity != facility`, evAuth, true},
		{`3 == severity`, evAuth, true},
		{`true == true`, evZero, true},
		{`(host == "web-1") == true`, evAuth, true},
		{`(host == "web-1") == false`, evAuth, false},
		{`(host == "web-1") != false`, evAuth, true},
		{`false != (host == "web-1")`, evAuth, true},
		{`(host == "web-1") == (app == "sshd")`, evAuth, true},
		{`(host == "web-1") != (app == "nginx")`, evAuth, true},
		{`(host == "x") == (app == "y")`, evAuth, true},
		// ordering on numbers
		{`severity < 4`, evAuth, true},
		{`severity < 3`, evAuth, false},
		{`severity <= 3`, evAuth, true},
		{`severity > 3`, evAuth, false},
		{`severity >= 3`, evAuth, true},
		{`4 > severity`, evAuth, true},
		{`3 >= severity`, evAuth, true},
		{`2 < severity`, evAuth, true},
		{`3 <= severity`, evAuth, true},
		{`facility > 15`, evV6, true},
		{`facility < severity`, evV6, false},
		{`facility <= severity`, evAuth, false},
		{`facility > severity`, evV6, true},
		{`facility >= severity`, evV6, true},
		{`facility != severity`, evV6, true},
		{`severity >= 0`, evFile, false}, // unknown is -1
		{`1 < 2`, evZero, true},
		{`-1 < 0`, evZero, true},
		{`-(1) == -1`, evZero, true},
		// severity/facility names
		{`severity <= "warning"`, evAuth, true},
		{`severity <= "warning"`, evV6, false},
		{`severity == "err"`, evAuth, true},
		{`severity == "error"`, evAuth, true},
		{`"err" == severity`, evAuth, true},
		{`"warning" >= severity`, evAuth, true},
		{`"info" < severity`, evAuth, false},
		{`severity > "err"`, evV6, true},
		{`severity != "err"`, evV6, true},
		{`facility == "auth"`, evAuth, true},
		{`facility == "local0"`, evV6, true},
		{`facility == "authpriv"`, evMapped, true},
		{`facility != "auth"`, evFile, true},
		{`facility >= "local0"`, evV6, true},
		{`(severity) <= "warning"`, evAuth, true},
		// && || ! and parentheses
		{`host == "web-1" && app == "sshd"`, evAuth, true},
		{`host == "web-1" && app == "nginx"`, evAuth, false},
		{`host == "x" || app == "sshd"`, evAuth, true},
		{`host == "x" || app == "y"`, evAuth, false},
		{`!(host == "web-1")`, evAuth, false},
		{`!(host == "x")`, evAuth, true},
		{`!!(host == "web-1")`, evAuth, true},
		{`!true`, evZero, false},
		{`true && host == "web-1"`, evAuth, true},
		{`host == "web-1" && true`, evAuth, true},
		{`false && host == "web-1"`, evAuth, false},
		{`false || host == "web-1"`, evAuth, true},
		{`true || host == "x"`, evAuth, true},
		{`host == "x" || false`, evAuth, false},
		{`true && false`, evZero, false},
		{`true || false`, evZero, true},
		{`true`, evZero, true},
		{`false`, evZero, false},
		{`facility == "auth" || (severity <= 3 && host != "noisy-box")`, evAuth, true},
		{`facility == "auth" || (severity <= 3 && host != "noisy-box")`, evFile, false},
		{`facility == "auth" || (severity <= 3 && host != "noisy-box")`, evV6, false},
		{`(facility == "auth" || severity <= 3) && host != "noisy-box"`, evAuth, true},
		// conditional
		{`stream == "syslog" ? severity <= 3 : true`, evAuth, true},
		{`stream == "syslog" ? severity <= 3 : true`, evV6, false},
		{`stream == "syslog" ? severity <= 3 : true`, evFile, true},
		{`(stream == "syslog" ? host : app) == "nginx"`, evFile, true},
		{`(stream == "syslog" ? host : app) == "web-1"`, evAuth, true},
		{`(stream == "syslog" ? severity : 7) < 5`, evAuth, true},
		{`(stream == "syslog" ? severity : 7) < 5`, evFile, false},
		{`(true ? host : app) == "web-1"`, evAuth, true},
		{`(false ? host : app) == "sshd"`, evAuth, true},
		{`(host == "web-1" ? "a" : "b") == "a"`, evAuth, true},
		{`(host == "web-1" ? 1 : 2) == 2`, evAuth, false},
	})
}

func TestFunctions(t *testing.T) { runEvalCases(t, functionCases) }

var functionCases = []evalCase{
	// contains
	{`contains(["auth", "authpriv"], facility)`, evAuth, true},
	{`contains(["auth", "authpriv"], facility)`, evMapped, true},
	{`contains(["auth", "authpriv"], facility)`, evV6, false},
	{`contains(["auth", "authpriv"], facility)`, evFile, false},
	{`contains([4, "local0"], facility)`, evV6, true},
	{`contains([0, 1, 2, 3], severity)`, evAuth, true},
	{`contains(["emerg", "alert", "crit"], severity)`, evAuth, false},
	{`contains([-1], severity)`, evFile, true},
	{`contains([-1, 100], severity)`, evAuth, false},
	{`contains([-1, 3], severity)`, evAuth, true},
	{`contains([], severity)`, evAuth, false},
	{`contains([], host)`, evAuth, false},
	{`contains(["web-1", "web-2"], host)`, evAuth, true},
	{`contains(["web-1", "web-1"], host)`, evAuth, true},
	{`contains(["web-1"], host)`, evAuth, true},
	{`contains(["web-2"], host)`, evAuth, false},
	{`contains(["a", "b", "c", "d", "e", "f", "g", "h", "i", "web-1"], host)`, evAuth, true},
	{`contains(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"], host)`, evAuth, false},
	{`contains(["DB-2"], upper(host))`, evV6, true},
	{`contains(["a", "b"], "b")`, evZero, true},
	{`contains([1, 2], 3)`, evZero, false},
	{`contains((["web-1"]), host)`, evAuth, true},
	{`contains([(1 < 2) ? "web-1" : "x"], host)`, evAuth, true},
	{`contains([3, 4], host == "web-1" ? severity : 0)`, evAuth, true},
	{`contains([100, 3], host == "web-1" ? severity : 0)`, evAuth, true},
	// strcontains, startswith, endswith
	{`strcontains(message, "password")`, evAuth, true},
	{`strcontains(message, "PASSWORD")`, evAuth, false},
	{`strcontains(lower(message), "failed")`, evAuth, true},
	{`strcontains(origin, app)`, evFile, true},
	{`strcontains(message, app)`, evAuth, false},
	{`strcontains("abc", "b")`, evZero, true},
	{`startswith(host, "web-")`, evAuth, true},
	{`startswith(host, "web-")`, evV6, false},
	{`startswith(message, "GET /healthz")`, evFile, true},
	{`startswith("web-1-x", host)`, evAuth, true},
	{`startswith(host, host)`, evAuth, true},
	{`endswith(host, "-1")`, evAuth, true},
	{`endswith(host, procid)`, evAuth, false},
	{`endswith(origin, ".log")`, evFile, true},
	{`endswith(origin, ".log")`, evAuth, false},
	{`endswith(sd["origin"]["software"], "d")`, evAuth, true},
	// regexmatch
	{`regexmatch(app, "^(sshd|sudo)$")`, evAuth, true},
	{`regexmatch(app, "^(sshd|sudo)$")`, evMapped, true},
	{`regexmatch(app, "^(sshd|sudo)$")`, evFile, false},
	{`regexmatch(app, "^ssh")`, evAuth, true},
	{`regexmatch(app, "ssh")`, evAuth, true},
	{`regexmatch(app, "shd$")`, evAuth, true},
	{`regexmatch(app, "^sshd$")`, evAuth, true},
	{`regexmatch(host, "-[0-9]$")`, evAuth, true},
	{`regexmatch(host, "-[0-9]$")`, evMapped, false},
	{`regexmatch(host, "^web-[0-9]+$")`, evMapped, true},
	{`regexmatch(host, "^web-[0-9]+$")`, evV6, false},
	{`regexmatch(message, "(?i)failed PASSWORD")`, evAuth, true},
	{`regexmatch(message, "from \\d+\\.\\d+\\.\\d+\\.\\d+$")`, evAuth, true},
	{`regexmatch(message, "")`, evZero, true},
	{`regexmatch("abc", "^a")`, evZero, true},
	// cidrcontains
	{`cidrcontains("10.0.0.0/8", origin)`, evAuth, true},
	{`cidrcontains("10.1.2.0/24", origin)`, evAuth, true},
	{`cidrcontains("10.1.3.0/24", origin)`, evAuth, false},
	{`cidrcontains("10.1.2.3/8", origin)`, evAuth, true}, // host bits are masked
	{`cidrcontains("10.0.0.0/8", origin)`, evFile, false},
	{`cidrcontains("10.0.0.0/8", origin)`, evZero, false},
	{`cidrcontains("10.0.0.0/8", origin)`, evMapped, true},
	{`cidrcontains("10.0.0.0/8", origin)`, evV6, false},
	{`cidrcontains("2001:db8::/32", origin)`, evV6, true},
	{`cidrcontains("2001:db8::/32", origin)`, evAuth, false},
	{`cidrcontains("0.0.0.0/0", origin)`, evAuth, true},
	{`cidrcontains("::/0", origin)`, evAuth, false},
	{`cidrcontains("10.0.0.0/8", sd["origin"]["ip"])`, evAuth, true},
	{`cidrcontains("192.0.2.0/24", "192.0.2.1")`, evZero, true},
	// lower, upper
	{`lower(host) == "db-2"`, evV6, true},
	{`upper(app) == "SSHD"`, evAuth, true},
	{`lower("ABC") == "abc"`, evZero, true},
	{`upper(lower(host)) == "DB-2"`, evV6, true},
}

func TestNilExpression(t *testing.T) {
	p, diags := Compile(nil)
	if p != nil || len(diags) != 0 {
		t.Fatalf("Compile(nil) = %v, %v; want nil, no diagnostics", p != nil, diags)
	}
}

func TestCompileConcurrentUse(t *testing.T) {
	p := mustCompile(t, `regexmatch(host, "^web-[0-9]+$") && cidrcontains("10.0.0.0/8", origin) || contains(["x", "y", "z", "a", "b", "c", "d", "e", "f"], app)`)
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func() {
			for i := 0; i < 1000; i++ {
				for _, ev := range testEvents {
					p(ev)
				}
			}
			done <- true
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}

func TestSuggest(t *testing.T) {
	for _, tc := range []struct{ given, want string }{
		{"hots", "host"},
		{"severty", "severity"},
		{"facilty", "facility"},
		{"mesage", "message"},
		{"zzzzzz", ""},
	} {
		if got := suggest(tc.given, fieldNames[:]); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.given, got, tc.want)
		}
	}
	if got := suggest("regex", funcNames[:]); got != "" && !strings.HasPrefix(got, "regex") {
		t.Errorf("suggest(regex) = %q", got)
	}
}
