package rules

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/sluicelog/sluice/router/event"
)

// ctyContext builds the EvalContext HCL itself would need to evaluate a
// condition over ev: every field as a variable, and the functions
// implemented with cty. It is the reference the compiled closures are
// checked against.
func ctyContext(ev *event.Event) *hcl.EvalContext {
	str2 := func(f func(s, t string) bool) function.Function {
		return function.New(&function.Spec{
			Params: []function.Parameter{{Name: "s", Type: cty.String}, {Name: "t", Type: cty.String}},
			Type:   function.StaticReturnType(cty.Bool),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				return cty.BoolVal(f(args[0].AsString(), args[1].AsString())), nil
			},
		})
	}
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"input":    cty.StringVal(ev.Input),
			"stream":   cty.StringVal(ev.Stream),
			"origin":   cty.StringVal(ev.Origin),
			"host":     cty.StringVal(ev.Host),
			"app":      cty.StringVal(ev.App),
			"procid":   cty.StringVal(ev.ProcID),
			"msgid":    cty.StringVal(ev.MsgID),
			"message":  cty.StringVal(ev.Message),
			"facility": cty.NumberIntVal(int64(ev.Facility)),
			"severity": cty.NumberIntVal(int64(ev.Severity)),
		},
		Functions: map[string]function.Function{
			"lower":       stdlib.LowerFunc,
			"upper":       stdlib.UpperFunc,
			"contains":    stdlib.ContainsFunc,
			"strcontains": str2(strings.Contains),
			"startswith":  str2(strings.HasPrefix),
			"endswith":    str2(strings.HasSuffix),
			"regexmatch": str2(func(s, re string) bool {
				return regexp.MustCompile(re).MatchString(s)
			}),
		},
	}
}

func TestCrossCheckWithHCL(t *testing.T) {
	exprs := []string{
		`host == "web-1"`,
		`host != "web-1"`,
		`"web-1" == host`,
		`host == app`,
		`input == "edge" && stream == "syslog"`,
		`origin == "10.1.2.3:5514" || message == "checkpoint complete"`,
		`procid == "123" || msgid == "-"`,
		`severity == 3`,
		`severity != 3`,
		`severity < 4`,
		`severity <= 3`,
		`severity > 3`,
		`severity >= 6`,
		`3 < severity`,
		`facility == 4 || facility == 10`,
		`facility < severity`,
		`severity == -1`,
		`severity == facility`,
		`!(severity <= 3)`,
		`!(host == "web-1") && !(app == "nginx")`,
		`facility == 4 || (severity <= 3 && host != "noisy-box")`,
		`(facility == 4 || severity <= 3) && host != "noisy-box"`,
		`true`,
		`false || host == ""`,
		`true && app == "sshd"`,
		`(host == "web-1") == (app == "sshd")`,
		`(host == "web-1") != true`,
		`stream == "syslog" ? severity <= 3 : host == "noisy-box"`,
		`(stream == "syslog" ? host : app) == "nginx"`,
		`(severity >= 0 ? severity : 7) < 5`,
		`lower(host) == "db-2"`,
		`upper(app) == "SSHD" || upper(host) == "WEB-10"`,
		`contains(["web-1", "web-2", "DB-2"], host)`,
		`contains(["a", "b", "c", "d", "e", "f", "g", "h", "i", "sudo"], app)`,
		`contains([3, 4, 6], severity)`,
		`contains([-1, 100], facility)`,
		`strcontains(message, "password")`,
		`startswith(host, "web-")`,
		`endswith(origin, ".log")`,
		`startswith(origin, app)`,
		`regexmatch(app, "^(sshd|sudo)$")`,
		`regexmatch(host, "^web-[0-9]+$")`,
		`regexmatch(host, "-1")`,
		`regexmatch(message, "^(GET|POST) ")`,
		`regexmatch(message, "(complete|200)$")`,
		`regexmatch(message, "(?i)FAILED")`,
		`regexmatch(host, "web-1?0?$")`,
	}
	events := append([]*event.Event{}, testEvents...)
	events = append(events,
		&event.Event{Host: "web-2", App: "sshd", Severity: 7, Facility: 0, Message: "POST /x", Stream: "syslog"},
		&event.Event{Host: "noisy-box", App: "sudo", Severity: 0, Facility: 23, Origin: "sudo.log", Stream: "syslog"},
	)
	for _, src := range exprs {
		expr := parse(t, src)
		p := mustCompile(t, src)
		ordersNumbers := strings.ContainsAny(src, "<>")
		for _, ev := range events {
			if ordersNumbers && (ev.Severity < 0 || ev.Facility < 0) {
				continue // by design ordering on an unknown value is false here, -1 in cty: TestUnknownNeverOrders
			}
			v, diags := expr.Value(ctyContext(ev))
			if diags.HasErrors() {
				t.Fatalf("%s: HCL evaluation failed: %s", src, diags.Error())
			}
			if v.Type() != cty.Bool || !v.IsKnown() || v.IsNull() {
				t.Fatalf("%s: HCL gave %#v", src, v)
			}
			if got, want := p(ev), v.True(); got != want {
				t.Errorf("%s on %+v: compiled %v, HCL %v", src, *ev, got, want)
			}
		}
	}
}

// An unknown severity or facility (-1) satisfies no ordering comparison, so
// an unparsed line is never "err or worse"; == -1 still selects it.
func TestUnknownNeverOrders(t *testing.T) {
	unknown := &event.Event{Severity: -1, Facility: -1}
	for src, want := range map[string]bool{
		`severity <= "err"`: false,
		`severity < 3`:      false,
		`severity >= 0`:     false,
		`severity > -5`:     false,
		`facility <= 23`:    false,
		`!(severity <= 3)`:  true,
		`severity == -1`:    true,
		`severity != 3`:     true,
		`facility == -1`:    true,
	} {
		if got := mustCompile(t, src)(unknown); got != want {
			t.Errorf("%s on unknown severity/facility = %v; want %v", src, got, want)
		}
	}
}
