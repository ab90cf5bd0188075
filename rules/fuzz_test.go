package rules

import (
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// FuzzCompile compiles arbitrary expression source. Compile must not panic,
// must return a nil Predicate exactly when it reports an error, must give
// every error a subject, and a returned Predicate must not panic on any test
// event.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`facility == "auth" || (severity <= 3 && host != "noisy-box")`,
		`contains(["auth", "authpriv"], facility)`,
		`regexmatch(app, "^(sshd|sudo)$") && cidrcontains("10.0.0.0/8", origin)`,
		`sd["origin"]["ip"] == "10.1.2.3"`,
		`stream == "a" ? severity : facility`,
		`lower(host) == upper(app)`,
		`!startswith(message, "GET") && endswith(origin, ".log") || strcontains(msgid, "x")`,
		`hots == 3 || foo(1) || "${x}" == ""`,
		`[for x in y : x]`,
		`sd[host][0]`,
		`-1 < severity`,
		`null`,
		`{a = 1}`,
		`x[*].y`,
		`severity <= "warning"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		expr, parseDiags := hclsyntax.ParseExpression([]byte(src), "fuzz.hcl", hcl.InitialPos)
		if expr == nil {
			return
		}
		p, diags := Compile(expr)
		if diags.HasErrors() != (p == nil) {
			t.Fatalf("%q: errors=%v but predicate nil=%v", src, diags.HasErrors(), p == nil)
		}
		for _, d := range diags {
			if d.Severity == hcl.DiagError && d.Subject == nil {
				t.Fatalf("%q: error without subject: %s", src, d.Error())
			}
		}
		if p != nil && !parseDiags.HasErrors() {
			for _, ev := range testEvents {
				p(ev)
			}
		}
	})
}
