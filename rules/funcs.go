package rules

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/sluicelog/sluice/router/event"
)

// funcNames lists the functions a condition can call, for suggestions.
// Read-only.
var funcNames = [...]string{
	"contains", "strcontains", "startswith", "endswith", "regexmatch", "cidrcontains", "lower", "upper",
}

// funcParams returns the parameter names of a function, or false if there
// is no such function.
func funcParams(name string) ([]string, bool) {
	switch name {
	case "contains":
		return []string{"list", "value"}, true
	case "strcontains":
		return []string{"string", "substr"}, true
	case "startswith":
		return []string{"string", "prefix"}, true
	case "endswith":
		return []string{"string", "suffix"}, true
	case "regexmatch":
		return []string{"string", "pattern"}, true
	case "cidrcontains":
		return []string{"prefix", "address"}, true
	case "lower", "upper":
		return []string{"string"}, true
	}
	return nil, false
}

// suggestFunc returns the function closest to name, also trying names that
// start with it ("regex" → "regexmatch").
func suggestFunc(name string) string {
	if s := suggest(name, funcNames[:]); s != "" {
		return s
	}
	if len(name) >= 4 {
		for _, f := range funcNames {
			if strings.HasPrefix(f, name) {
				return f
			}
		}
	}
	return ""
}

func unparen(e hclsyntax.Expression) hclsyntax.Expression {
	for {
		p, ok := e.(*hclsyntax.ParenthesesExpr)
		if !ok {
			return e
		}
		e = p.Expression
	}
}

// checkOnly compiles an argument of a call that is already known to be
// wrong, only to report the errors inside it. A literal list is checked
// element by element instead of being reported as misplaced.
func (c *compiler) checkOnly(a hclsyntax.Expression) {
	if t, ok := unparen(a).(*hclsyntax.TupleConsExpr); ok {
		for _, el := range t.Exprs {
			c.expr(el)
		}
		return
	}
	c.expr(a)
}

func (c *compiler) call(x *hclsyntax.FunctionCallExpr) node {
	rng := x.Range()
	params, ok := funcParams(x.Name)
	if !ok {
		for _, a := range x.Args {
			c.checkOnly(a)
		}
		detail := fmt.Sprintf("There is no function named %q.", x.Name)
		if s := suggestFunc(x.Name); s != "" {
			detail += fmt.Sprintf(" Did you mean %q?", s)
		}
		detail += " Available functions: " + quotedList(funcNames[:]) + "."
		c.errorf(x.NameRange, summaryUnknownFunc, "%s", detail)
		return invalid(rng)
	}
	if x.ExpandFinal {
		for _, a := range x.Args {
			c.checkOnly(a)
		}
		c.errorf(rng, summaryUnsupported, "Expanding a list into arguments with ... is not supported.")
		return invalid(rng)
	}
	if len(x.Args) != len(params) {
		for _, a := range x.Args {
			c.checkOnly(a)
		}
		plural := "s"
		if len(params) == 1 {
			plural = ""
		}
		c.errorf(rng, summaryArgCount, "Function %s expects %d argument%s (%s); got %d.",
			x.Name, len(params), plural, strings.Join(params, ", "), len(x.Args))
		return invalid(rng)
	}
	switch x.Name {
	case "contains":
		return c.contains(x, rng)
	case "cidrcontains":
		return c.cidrcontains(x, rng)
	}

	args := make([]node, len(x.Args))
	bad := false
	for i, a := range x.Args {
		args[i] = c.expr(a)
		switch args[i].k {
		case kInvalid:
			bad = true
		case kString:
		default:
			c.errorCtx(args[i].rng, rng, summaryBadArg, "Argument %d of %s (%s) must be a string; this is a %s.",
				i+1, x.Name, params[i], args[i].k)
			bad = true
		}
	}
	var re *strMatcher
	if x.Name == "regexmatch" && args[1].k == kString {
		if !args[1].cst {
			c.errorCtx(args[1].rng, rng, summaryBadArg, "The pattern of regexmatch must be a literal string, so that it is compiled once.")
			bad = true
		} else {
			var err error
			if re, err = compileRegex(args[1].sv); err != nil {
				c.errorCtx(args[1].rng, rng, summaryBadRegex, "The pattern %q is not a valid RE2 regular expression: %s.", args[1].sv, err)
				bad = true
			}
		}
	}
	if bad {
		return invalid(rng)
	}

	var n node
	switch x.Name {
	case "strcontains", "startswith", "endswith":
		n = strTest(x.Name, args[0], args[1], rng)
	case "regexmatch":
		n = node{k: kBool, rng: rng, b: re.predicate(args[0].strFn()), cost: args[0].cost + re.cost()}
	case "lower":
		g := args[0].strFn()
		n = node{k: kString, rng: rng, s: func(e *event.Event) string { return strings.ToLower(g(e)) }, cost: args[0].cost + 20}
	case "upper":
		g := args[0].strFn()
		n = node{k: kString, rng: rng, s: func(e *event.Event) string { return strings.ToUpper(g(e)) }, cost: args[0].cost + 20}
	}
	for _, a := range args {
		if !a.cst {
			return n
		}
	}
	return fold(n)
}

// strTest compiles strcontains, startswith and endswith.
func strTest(name string, s, sub node, rng hcl.Range) node {
	g := s.strFn()
	n := node{k: kBool, rng: rng, cost: s.cost + sub.cost + 2}
	if sub.cst {
		v := sub.sv
		switch name {
		case "strcontains":
			n.b = func(e *event.Event) bool { return strings.Contains(g(e), v) }
		case "startswith":
			n.b = func(e *event.Event) bool { return strings.HasPrefix(g(e), v) }
		default:
			n.b = func(e *event.Event) bool { return strings.HasSuffix(g(e), v) }
		}
	} else {
		h := sub.s
		switch name {
		case "strcontains":
			n.b = func(e *event.Event) bool { return strings.Contains(g(e), h(e)) }
		case "startswith":
			n.b = func(e *event.Event) bool { return strings.HasPrefix(g(e), h(e)) }
		default:
			n.b = func(e *event.Event) bool { return strings.HasSuffix(g(e), h(e)) }
		}
	}
	if s.cst && sub.cst {
		return fold(n)
	}
	return n
}

// smallSet is the size up to which membership is a linear scan rather than
// a map lookup.
const smallSet = 8

// contains compiles contains(list, value). The list must be a literal list
// of strings or numbers; strings compared with severity or facility are
// converted to numbers by name.
func (c *compiler) contains(x *hclsyntax.FunctionCallExpr, rng hcl.Range) node {
	val := c.expr(x.Args[1])
	tup, isList := unparen(x.Args[0]).(*hclsyntax.TupleConsExpr)
	if !isList {
		n := c.expr(x.Args[0])
		if n.k != kInvalid {
			c.errorCtx(x.Args[0].Range(), rng, summaryBadArg, "The first argument of contains must be a literal list, for example [\"auth\", \"authpriv\"].")
		}
		return invalid(rng)
	}
	valBad := false
	switch {
	case val.k == kInvalid:
		valBad = true
	case val.k != kString && val.k != kNumber:
		c.errorCtx(val.rng, rng, summaryBadArg, "The value of contains must be a string or a number; this is a %s.", val.k)
		valBad = true
	}
	bad := valBad
	elems := make([]node, 0, len(tup.Exprs))
	for _, el := range tup.Exprs {
		n := c.expr(el)
		switch {
		case n.k == kInvalid:
			bad = true
			continue
		case !n.cst:
			c.errorCtx(n.rng, rng, summaryBadArg, "The elements of the list in contains must be literal strings or numbers.")
			bad = true
			continue
		case n.k != kString && n.k != kNumber:
			c.errorCtx(n.rng, rng, summaryBadArg, "The elements of the list in contains must be strings or numbers; this is a %s.", n.k)
			bad = true
			continue
		}
		if val.fld.isNumber() && n.k == kString {
			var ok bool
			if n, ok = c.nameToNumber(val.fld, n); !ok {
				bad = true
				continue
			}
		}
		if !valBad && val.k != n.k {
			c.errorCtx(n.rng, rng, summaryTypeMismatch, "This list element is a %s but the value tested is a %s.", n.k, val.k)
			bad = true
			continue
		}
		elems = append(elems, n)
	}
	if bad {
		return invalid(rng)
	}
	n := node{k: kBool, rng: rng, cost: val.cost + 2}
	if val.k == kString {
		n.b = stringMembership(val.strFn(), elems)
	} else {
		n.b = numberMembership(val, elems)
	}
	if val.cst {
		return fold(n)
	}
	return n
}

func stringMembership(g func(*event.Event) string, elems []node) func(*event.Event) bool {
	set := make([]string, 0, len(elems))
	seen := make(map[string]struct{}, len(elems))
	for _, el := range elems {
		if _, dup := seen[el.sv]; !dup {
			seen[el.sv] = struct{}{}
			set = append(set, el.sv)
		}
	}
	switch {
	case len(set) == 0:
		return func(*event.Event) bool { return false }
	case len(set) == 1:
		v := set[0]
		return func(e *event.Event) bool { return g(e) == v }
	case len(set) <= smallSet:
		return func(e *event.Event) bool {
			s := g(e)
			for _, v := range set {
				if s == v {
					return true
				}
			}
			return false
		}
	}
	return func(e *event.Event) bool {
		_, ok := seen[g(e)]
		return ok
	}
}

func numberMembership(val node, elems []node) func(*event.Event) bool {
	var mask uint64
	fits := true
	set := make([]int64, 0, len(elems))
	for _, el := range elems {
		if el.nv >= 0 && el.nv < 64 {
			mask |= 1 << uint(el.nv)
		} else {
			fits = false
		}
		set = append(set, el.nv)
	}
	if fits {
		// A bit set: one shift and test. Severity and facility always fit.
		switch val.fld {
		case fSeverity:
			return func(e *event.Event) bool {
				v := uint64(int64(e.Severity))
				return v < 64 && mask>>v&1 != 0
			}
		case fFacility:
			return func(e *event.Event) bool {
				v := uint64(int64(e.Facility))
				return v < 64 && mask>>v&1 != 0
			}
		}
		g := val.numFn()
		return func(e *event.Event) bool {
			v := uint64(g(e))
			return v < 64 && mask>>v&1 != 0
		}
	}
	g := val.numFn()
	return func(e *event.Event) bool {
		v := g(e)
		for _, x := range set {
			if v == x {
				return true
			}
		}
		return false
	}
}

// cidrcontains compiles cidrcontains(prefix, address). The prefix must be
// a literal; it is parsed once.
func (c *compiler) cidrcontains(x *hclsyntax.FunctionCallExpr, rng hcl.Range) node {
	p, a := c.expr(x.Args[0]), c.expr(x.Args[1])
	bad := false
	var prefix netip.Prefix
	switch {
	case p.k == kInvalid:
		bad = true
	case p.k != kString || !p.cst:
		c.errorCtx(p.rng, rng, summaryBadArg, "The first argument of cidrcontains must be a literal CIDR prefix string, for example \"10.0.0.0/8\".")
		bad = true
	default:
		var err error
		prefix, err = netip.ParsePrefix(p.sv)
		if err != nil {
			c.errorCtx(p.rng, rng, summaryBadCIDR, "%q is not a CIDR prefix such as \"10.0.0.0/8\" or \"2001:db8::/32\": %s.", p.sv, err)
			bad = true
		}
	}
	switch a.k {
	case kInvalid:
		bad = true
	case kString:
	default:
		c.errorCtx(a.rng, rng, summaryBadArg, "Argument 2 of cidrcontains (address) must be a string; this is a %s.", a.k)
		bad = true
	}
	if bad {
		return invalid(rng)
	}
	prefix = prefix.Masked()
	n := node{k: kBool, rng: rng, b: cidrPredicate(prefix, a.strFn()), cost: a.cost + 8}
	if a.cst {
		return fold(n)
	}
	return n
}

// cidrPredicate returns the test of g(e) against prefix. IPv4 prefixes
// take a fast path for "a.b.c.d" and "a.b.c.d:port" and also match
// IPv4-mapped IPv6 addresses.
func cidrPredicate(prefix netip.Prefix, g func(*event.Event) string) func(*event.Event) bool {
	if !prefix.Addr().Is4() {
		return func(e *event.Event) bool {
			ip, ok := parseOrigin(g(e))
			return ok && prefix.Contains(ip)
		}
	}
	b4 := prefix.Addr().As4()
	network := uint32(b4[0])<<24 | uint32(b4[1])<<16 | uint32(b4[2])<<8 | uint32(b4[3])
	mask := ^uint32(0) << (32 - prefix.Bits()) // 0 for /0
	return func(e *event.Event) bool {
		s := g(e)
		if ip, ok := parseIPv4Origin(s); ok {
			return ip&mask == network
		}
		if strings.IndexByte(s, ':') < 0 {
			return false // neither IPv4 nor IPv6: a path or a name
		}
		ip, ok := parseOrigin(s)
		return ok && prefix.Contains(ip.Unmap())
	}
}
