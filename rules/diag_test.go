package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
)

func TestDiagnostics(t *testing.T) {
	cases := []struct {
		src     string
		summary string // substring of the first error's summary
		pos     string // "line:col" of the first error's subject
		count   int    // number of errors; 0 means 1
		detail  string // optional substring of the first error's detail
	}{
		// unknown and unsupported fields
		{src: `hots == "x"`, summary: "Unknown event field", pos: "1:1", detail: `Did you mean "host"?`},
		{src: `host == "x" && sevrity < 3`, summary: "Unknown event field", pos: "1:16", detail: "Valid fields: input, stream"},
		{src: `time > 3`, summary: "not supported yet", pos: "1:1"},
		{src: `startswith(time, "2")`, summary: "not supported yet", pos: "1:12"},
		{src: `host.name == "x"`, summary: "Unsupported attribute or index", pos: "1:5"},
		{src: `host["x"] == "x"`, summary: "Unsupported attribute or index", pos: "1:5"},
		{src: `sd["origin"] == "x"`, summary: "Invalid structured-data reference", pos: "1:1"},
		{src: `sd == "x"`, summary: "Invalid structured-data reference", pos: "1:1"},
		{src: `sd["a"]["b"]["c"] == "x"`, summary: "Invalid structured-data reference", pos: "1:13"},
		{src: `sd[host]["ip"] == "x"`, summary: "Invalid structured-data reference", pos: "1:4"},
		{src: `sd["a"][app] == ""`, summary: "Invalid structured-data reference", pos: "1:9"},
		{src: `sd["a"][0] == "x"`, summary: "Invalid structured-data reference", pos: "1:8"},
		{src: `sd["a"][hots] == "x"`, summary: "Unknown event field", pos: "1:9"},
		{src: `(sd)["a"]["b"] == "x"`, summary: "Unsupported expression in route condition", pos: "1:1"},
		// literals and templates
		{src: `"${host}" == "x"`, summary: "String templates", pos: "1:1"},
		{src: `host == "a${app}"`, summary: "String templates", pos: "1:9"},
		{src: `host == "%{if true}a%{endif}"`, summary: "String templates", pos: "1:9"},
		{src: `host == 1.5`, summary: "Invalid number", pos: "1:9"},
		{src: `99999999999999999999 == severity`, summary: "Invalid number", pos: "1:1"},
		{src: `null == host`, summary: "Unsupported expression in route condition", pos: "1:1"},
		{src: `["a"] == host`, summary: "Unsupported expression in route condition", pos: "1:1"},
		{src: `{a = 1} == host`, summary: "Unsupported expression in route condition", pos: "1:1"},
		{src: `host[*] == "a"`, summary: "Unsupported expression in route condition", pos: "1:1"},
		{src: `[for x in ["a"] : x] == host`, summary: "Unsupported expression in route condition", pos: "1:1"},
		// operators and types
		{src: `host < 3`, summary: "Invalid operand", pos: "1:1"},
		{src: `"a" >= "b"`, summary: "Invalid operand", pos: "1:1", count: 2},
		{src: `severity == "nope"`, summary: "Unknown severity name", pos: "1:13"},
		{src: `"nope" > severity`, summary: "Unknown severity name", pos: "1:1"},
		{src: `facility == "authh"`, summary: "Unknown facility name", pos: "1:13"},
		{src: `host == 3`, summary: "Type mismatch", pos: "1:9"},
		{src: `3 == host`, summary: "Type mismatch", pos: "1:1"},
		{src: `host == severity`, summary: "Type mismatch", pos: "1:9"},
		{src: `host == true`, summary: "Type mismatch", pos: "1:9"},
		{src: `severity + 1 > 3`, summary: "Unsupported expression in route condition", pos: "1:1"},
		{src: `sevrity + 1 > 3`, summary: "Unknown event field", pos: "1:1", count: 2},
		{src: `-severity == 1`, summary: "Unsupported expression in route condition", pos: "1:1"},
		{src: `!host`, summary: "Invalid operand", pos: "1:2"},
		{src: `host && true`, summary: "Invalid operand", pos: "1:1"},
		{src: `true || severity`, summary: "Invalid operand", pos: "1:9"},
		{src: `host ? true : false`, summary: "Invalid operand", pos: "1:1"},
		{src: `host == "a" ? 1 : "b"`, summary: "Type mismatch", pos: "1:19"},
		{src: `host`, summary: "Route condition must be a boolean", pos: "1:1"},
		{src: `severity`, summary: "Route condition must be a boolean", pos: "1:1"},
		{src: `"yes"`, summary: "Route condition must be a boolean", pos: "1:1"},
		{src: `host == "a" ? 1 : 2`, summary: "Route condition must be a boolean", pos: "1:1"},
		// functions
		{src: `foo(host)`, summary: "Call to unknown function", pos: "1:1"},
		{src: `regexmach(host, "x")`, summary: "Call to unknown function", pos: "1:1", detail: `Did you mean "regexmatch"?`},
		{src: `foo(hots)`, summary: "Unknown event field", pos: "1:5", count: 2},
		{src: `regex(host, "x")`, summary: "Call to unknown function", pos: "1:1", detail: `Did you mean "regexmatch"?`},
		{src: `regexmatch(hots, "(")`, summary: "Unknown event field", pos: "1:12", count: 2},
		{src: `sd[0]["x"] == ""`, summary: "Invalid structured-data reference", pos: "1:3", detail: "got a number key"},
		{src: `core::contains(["a"], host)`, summary: "Call to unknown function", pos: "1:1"},
		{src: `startswith(host)`, summary: "Wrong number of arguments", pos: "1:1", detail: "expects 2 arguments (string, prefix); got 1"},
		{src: `upper(host, app) == "x"`, summary: "Wrong number of arguments", pos: "1:1"},
		{src: `contains(["a"]) || contains(["b"], host, app)`, summary: "Wrong number of arguments", pos: "1:1", count: 2},
		{src: `startswith(["a", "b"]...)`, summary: "Unsupported expression in route condition", pos: "1:1"},
		{src: `startswith(host, 3)`, summary: "Invalid function argument", pos: "1:18"},
		{src: `lower(3) == "3"`, summary: "Invalid function argument", pos: "1:7"},
		{src: `strcontains(severity, facility)`, summary: "Invalid function argument", pos: "1:13", count: 2},
		{src: `regexmatch(host, "[")`, summary: "Invalid regular expression", pos: "1:18"},
		{src: `regexmatch(host, "(?<x")`, summary: "Invalid regular expression", pos: "1:18"},
		{src: `regexmatch(host, app)`, summary: "Invalid function argument", pos: "1:18"},
		{src: `regexmatch(host, 3)`, summary: "Invalid function argument", pos: "1:18"},
		{src: `cidrcontains("10.0.0.0/33", origin)`, summary: "Invalid CIDR prefix", pos: "1:14"},
		{src: `cidrcontains("10.0.0.1", origin)`, summary: "Invalid CIDR prefix", pos: "1:14"},
		{src: `cidrcontains(origin, origin)`, summary: "Invalid function argument", pos: "1:14"},
		{src: `cidrcontains("10.0.0.0/8", severity)`, summary: "Invalid function argument", pos: "1:28"},
		{src: `cidrcontains("nope", severity)`, summary: "Invalid CIDR prefix", pos: "1:14", count: 2},
		{src: `contains(host, app)`, summary: "Invalid function argument", pos: "1:10"},
		{src: `contains(["a", 1], host)`, summary: "Type mismatch", pos: "1:16"},
		{src: `contains([1, "a", 2, "b"], host)`, summary: "Type mismatch", pos: "1:11", count: 2},
		{src: `contains(["auth", "nope"], facility)`, summary: "Unknown facility name", pos: "1:19"},
		{src: `contains(["nope", "info", "bad"], severity)`, summary: "Unknown severity name", pos: "1:11", count: 2},
		{src: `contains([host], app)`, summary: "Invalid function argument", pos: "1:11"},
		{src: `contains([true], severity == 1)`, summary: "Invalid function argument", pos: "1:18", count: 2},
		{src: `contains(["a"], hots)`, summary: "Unknown event field", pos: "1:17"},
		{src: `contains(hots, app)`, summary: "Unknown event field", pos: "1:10"},
		// several errors in one expression
		{src: `hots == "x" || severity == "nope" || foo(1) || host < 3`, summary: "Unknown event field", pos: "1:1", count: 4},
		{src: "host == \"a\" &&\n  sevrity <= 3 &&\n  regexmatch(app, \"(\")", summary: "Unknown event field", pos: "2:3", count: 2},
		{src: "facility == \"auth\" ||\n  (severity <= \"warn1ng\" && host != 3)", summary: "Unknown severity name", pos: "2:16", count: 2},
	}
	for _, tc := range cases {
		want := tc.count
		if want == 0 {
			want = 1
		}
		p, diags := Compile(parse(t, tc.src))
		if p != nil {
			t.Errorf("%s: predicate is not nil despite errors", tc.src)
		}
		errs := errorsOf(diags)
		if len(errs) != want {
			t.Errorf("%s: %d errors, want %d:\n%s", tc.src, len(errs), want, describeDiags(errs))
			continue
		}
		d := errs[0]
		if !strings.Contains(d.Summary, tc.summary) {
			t.Errorf("%s: summary %q, want it to contain %q", tc.src, d.Summary, tc.summary)
		}
		if tc.detail != "" && !strings.Contains(d.Detail, tc.detail) {
			t.Errorf("%s: detail %q, want it to contain %q", tc.src, d.Detail, tc.detail)
		}
		if got := fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column); got != tc.pos {
			t.Errorf("%s: error at %s, want %s (%s)", tc.src, got, tc.pos, d.Summary)
		}
		for _, d := range errs {
			if d.Subject.Filename != "test.hcl" || d.Subject.End.Byte < d.Subject.Start.Byte {
				t.Errorf("%s: bad subject %#v", tc.src, d.Subject)
			}
		}
	}
}

// errorsOf returns the error diagnostics, checking that each has a subject.
func errorsOf(diags hcl.Diagnostics) []*hcl.Diagnostic {
	var out []*hcl.Diagnostic
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			if d.Subject == nil {
				panic("error diagnostic without subject: " + d.Error())
			}
			out = append(out, d)
		}
	}
	return out
}

func describeDiags(diags []*hcl.Diagnostic) string {
	var b strings.Builder
	for _, d := range diags {
		fmt.Fprintf(&b, "  %s: %s; %s\n", d.Subject, d.Summary, d.Detail)
	}
	return b.String()
}

func TestDiagnosticSubjectText(t *testing.T) {
	// The subject range must cover exactly the offending text.
	for _, tc := range []struct{ src, text string }{
		{`host == "x" && sevrity < 3`, `sevrity`},
		{`severity <= "warnign"`, `"warnign"`},
		{`regexmatch(app, "a(")`, `"a("`},
		{`cidrcontains("300.0.0.0/8", origin)`, `"300.0.0.0/8"`},
		{`(host) < 3`, `(host)`},
		{`startswith(host)`, `startswith(host)`},
		{`nope(host)`, `nope`},
		{`sd["a"][host] == ""`, `host`},
	} {
		_, diags := Compile(parse(t, tc.src))
		errs := errorsOf(diags)
		if len(errs) != 1 {
			t.Errorf("%s: %d errors, want 1:\n%s", tc.src, len(errs), describeDiags(errs))
			continue
		}
		r := errs[0].Subject
		if got := tc.src[r.Start.Byte:r.End.Byte]; got != tc.text {
			t.Errorf("%s: subject text %q, want %q", tc.src, got, tc.text)
		}
	}
}

func TestJSONSyntaxRejected(t *testing.T) {
	f, diags := hcljson.Parse([]byte(`{"when": "host == \"x\""}`), "test.json")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	attrs, diags := f.Body.JustAttributes()
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	p, diags := Compile(attrs["when"].Expr)
	errs := errorsOf(diags)
	if p != nil || len(errs) != 1 || errs[0].Summary != summaryUnsupported {
		t.Fatalf("got %v, %s", p != nil, describeDiags(errs))
	}
}

func TestSyntaxErrorExpression(t *testing.T) {
	// The parser may also return a partial tree without placeholders (for
	// `host == "a" &&` it returns `host == "a"`); callers must not compile an
	// expression whose parse failed. These have placeholders.
	for _, src := range []string{`host ==`, `startswith(`, `(`, `contains([`} {
		expr, parseDiags := hclsyntax.ParseExpression([]byte(src), "test.hcl", hcl.InitialPos)
		if !parseDiags.HasErrors() {
			t.Fatalf("%s: expected a parse error", src)
		}
		if expr == nil {
			continue
		}
		p, diags := Compile(expr)
		if p != nil || !diags.HasErrors() {
			t.Errorf("%s: Compile of a broken expression gave no error", src)
		}
		errorsOf(diags)
	}
}

func TestAbsentAttributeIsNil(t *testing.T) {
	// gohcl decodes an absent optional hcl.Expression as a static null.
	p, diags := Compile(hcl.StaticExpr(cty.NullVal(cty.DynamicPseudoType), hcl.Range{Filename: "x.hcl"}))
	if p != nil || len(diags) != 0 {
		t.Fatalf("got %v, %v; want nil predicate, no diagnostics", p != nil, diags)
	}
}

func TestGohclRouteBlock(t *testing.T) {
	src := `
route "security" {
  when = facility == "auth" || severity <= "crit"
}
route "all" {
}
route "typo" {
  when = hots == "x"
}
`
	type route struct {
		Name string         `hcl:"name,label"`
		When hcl.Expression `hcl:"when,optional"`
	}
	var cfg struct {
		Routes []route `hcl:"route,block"`
	}
	f, diags := hclparse.NewParser().ParseHCL([]byte(src), "sluice.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if diags := gohcl.DecodeBody(f.Body, nil, &cfg); diags.HasErrors() {
		t.Fatal(diags)
	}
	p, diags := Compile(cfg.Routes[0].When)
	if diags.HasErrors() || !p(evAuth) || p(evV6) {
		t.Errorf("security: %v", diags)
	}
	if p, diags := Compile(cfg.Routes[1].When); p != nil || diags.HasErrors() {
		t.Errorf("absent when: predicate %v, %v", p != nil, diags)
	}
	_, diags = Compile(cfg.Routes[2].When)
	if errs := errorsOf(diags); len(errs) != 1 || errs[0].Subject.String() != "sluice.hcl:8,10-14" {
		t.Errorf("typo: %s", describeDiags(errs))
	}
}
