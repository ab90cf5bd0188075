package rules

import (
	"fmt"
	"math/big"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/sluicelog/sluice/router/event"
)

// Predicate reports whether an event satisfies a compiled `when` expression.
// It is safe for concurrent use, does not retain or modify the event, and
// does not allocate unless the expression calls lower() or upper().
type Predicate func(*event.Event) bool

// Diagnostic summaries used by Compile. They are stable so that callers and
// tests can recognise the kind of error.
const (
	summaryUnsupported     = "Unsupported expression in route condition"
	summaryUnknownField    = "Unknown event field"
	summaryTimeUnsupported = `Field "time" is not supported yet`
	summaryBadSD           = "Invalid structured-data reference"
	summaryBadFieldAccess  = "Unsupported attribute or index"
	summaryTemplate        = "String templates are not supported in route conditions"
	summaryBadNumber       = "Invalid number"
	summaryUnknownFunc     = "Call to unknown function"
	summaryArgCount        = "Wrong number of arguments"
	summaryBadArg          = "Invalid function argument"
	summaryBadRegex        = "Invalid regular expression"
	summaryBadCIDR         = "Invalid CIDR prefix"
	summaryUnknownSev      = "Unknown severity name"
	summaryUnknownFac      = "Unknown facility name"
	summaryTypeMismatch    = "Type mismatch"
	summaryBadOperand      = "Invalid operand"
	summaryNotBool         = "Route condition must be a boolean"
	summaryInvalidExpr     = "Invalid expression"
)

// Compile compiles a `when` expression into a Predicate. The expression must
// be native HCL syntax (an hclsyntax.Expression); the language is described
// in the package documentation.
//
// Every unsupported construct, unknown field or function, wrong argument
// count or type, invalid regular expression or CIDR prefix, unknown severity
// or facility name, and type mismatch is reported as an hcl.Diagnostic with
// Severity hcl.DiagError and Subject set to the source range of the offending
// sub-expression. Compilation continues past an error so that all errors in
// the expression are reported at once. When the diagnostics contain an error
// the returned Predicate is nil.
//
// A nil expr, and the static null expression gohcl gives for an absent
// optional attribute, compile to a nil Predicate and no diagnostics; a nil
// Route.When matches every event. Compile expressions only from a parse
// without errors: after a syntax error the parser may return a partial
// tree that is itself valid.
//
// The returned Predicate never uses cty or HCL evaluation and keeps no
// reference to expr.
func Compile(expr hcl.Expression) (Predicate, hcl.Diagnostics) {
	if expr == nil {
		return nil, nil
	}
	c := &compiler{top: expr.Range()}
	x, ok := expr.(hclsyntax.Expression)
	if !ok {
		// gohcl decodes an absent optional attribute as a static null.
		if v, diags := expr.Value(nil); !diags.HasErrors() && v.IsKnown() && v.IsNull() {
			return nil, nil
		}
		c.errorf(expr.Range(), summaryUnsupported,
			"Route conditions must be written in native HCL syntax (a .hcl file), not JSON.")
		return nil, c.diags
	}
	n := c.expr(x)
	if n.k != kInvalid && n.k != kBool {
		c.errorf(n.rng, summaryNotBool, "This expression is a %s; a `when` condition must be true or false, for example host == \"web-1\".", n.k)
	}
	if c.diags.HasErrors() {
		return nil, c.diags
	}
	if n.cst {
		v := n.bv
		return func(*event.Event) bool { return v }, c.diags
	}
	return Predicate(n.b), c.diags
}

// kind is the static type of a compiled sub-expression.
type kind uint8

const (
	kInvalid kind = iota // an error was already reported
	kString
	kNumber
	kBool
)

func (k kind) String() string {
	switch k {
	case kString:
		return "string"
	case kNumber:
		return "number"
	case kBool:
		return "bool"
	}
	return "invalid value"
}

// node is a type-checked sub-expression. Exactly one of s, n, b is set for a
// non-constant node of the matching kind; constant nodes hold their value in
// sv, nv or bv instead.
type node struct {
	k   kind
	rng hcl.Range
	fld fieldID // set when the node is exactly a field reference

	// cost is a rough estimate of the evaluation cost, used to evaluate
	// the cheaper operand of && and || first (operands have no side
	// effects, so the order does not change the result).
	cost int

	cst bool
	sv  string
	nv  int64
	bv  bool

	s func(*event.Event) string
	n func(*event.Event) int64
	b func(*event.Event) bool
}

func invalid(rng hcl.Range) node            { return node{rng: rng} }
func constStr(rng hcl.Range, v string) node { return node{k: kString, rng: rng, cst: true, sv: v} }
func constNum(rng hcl.Range, v int64) node  { return node{k: kNumber, rng: rng, cst: true, nv: v} }
func constBool(rng hcl.Range, v bool) node  { return node{k: kBool, rng: rng, cst: true, bv: v} }

// strFn returns the node's value as a string closure (constant or not).
func (n node) strFn() func(*event.Event) string {
	if n.cst {
		v := n.sv
		return func(*event.Event) string { return v }
	}
	return n.s
}

func (n node) numFn() func(*event.Event) int64 {
	if n.cst {
		v := n.nv
		return func(*event.Event) int64 { return v }
	}
	return n.n
}

func (n node) boolFn() func(*event.Event) bool {
	if n.cst {
		v := n.bv
		return func(*event.Event) bool { return v }
	}
	return n.b
}

// fold evaluates a node built from constant operands once, at compile time.
// The closures of such a node never read the event, so a zero Event is
// passed.
func fold(n node) node {
	if n.cst {
		return n
	}
	var zero event.Event
	switch n.k {
	case kString:
		n.sv, n.s = n.s(&zero), nil
	case kNumber:
		n.nv, n.n = n.n(&zero), nil
	case kBool:
		n.bv, n.b = n.b(&zero), nil
	}
	n.cst = true
	n.fld = fNone
	return n
}

type compiler struct {
	diags hcl.Diagnostics
	top   hcl.Range
}

func (c *compiler) errorf(rng hcl.Range, summary, format string, args ...any) {
	r := rng
	c.diags = append(c.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  &r,
	})
}

// errorCtx is errorf with a Context range (the enclosing expression).
func (c *compiler) errorCtx(rng, ctx hcl.Range, summary, format string, args ...any) {
	c.errorf(rng, summary, format, args...)
	cr := ctx
	c.diags[len(c.diags)-1].Context = &cr
}

func (c *compiler) expr(e hclsyntax.Expression) node {
	if e == nil {
		c.errorf(c.top, summaryInvalidExpr, "An expression is missing here.")
		return invalid(c.top)
	}
	switch x := e.(type) {
	case *hclsyntax.ParenthesesExpr:
		n := c.expr(x.Expression)
		n.rng = x.SrcRange
		return n
	case *hclsyntax.LiteralValueExpr:
		return c.literal(x.Val, x.SrcRange)
	case *hclsyntax.TemplateExpr:
		if x.IsStringLiteral() {
			v, diags := x.Value(nil)
			if !diags.HasErrors() && v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
				return constStr(x.SrcRange, v.AsString())
			}
		}
		c.errorf(x.SrcRange, summaryTemplate,
			"Interpolations (${ ... }) and directives (%%{ ... }) cannot be used in a `when` condition; compare fields directly, for example host == \"web-1\". Write $${ for a literal ${.")
		return invalid(x.SrcRange)
	case *hclsyntax.TemplateWrapExpr:
		c.errorf(x.SrcRange, summaryTemplate,
			"Interpolations (${ ... }) cannot be used in a `when` condition; write the expression without the quotes and ${ }.")
		return invalid(x.SrcRange)
	case *hclsyntax.ScopeTraversalExpr, *hclsyntax.IndexExpr, *hclsyntax.RelativeTraversalExpr:
		return c.reference(e)
	case *hclsyntax.UnaryOpExpr:
		return c.unary(x)
	case *hclsyntax.BinaryOpExpr:
		return c.binary(x)
	case *hclsyntax.ConditionalExpr:
		return c.conditional(x)
	case *hclsyntax.FunctionCallExpr:
		return c.call(x)
	case *hclsyntax.TupleConsExpr:
		c.errorf(x.SrcRange, summaryUnsupported,
			"A list can only be used as the first argument of contains(), for example contains([\"auth\", \"authpriv\"], facility).")
		return invalid(x.SrcRange)
	case *hclsyntax.ExprSyntaxError:
		c.errorf(x.SrcRange, summaryInvalidExpr, "This expression has syntax errors.")
		return invalid(x.SrcRange)
	}
	c.errorf(e.Range(), summaryUnsupported, "%s cannot be used in a `when` condition.", describe(e))
	return invalid(e.Range())
}

// describe names an unsupported construct for diagnostics.
func describe(e hclsyntax.Expression) string {
	switch e.(type) {
	case *hclsyntax.ForExpr:
		return "A for expression"
	case *hclsyntax.SplatExpr:
		return "A splat expression ([*])"
	case *hclsyntax.ObjectConsExpr:
		return "An object or map constructor ({ ... })"
	case *hclsyntax.ObjectConsKeyExpr:
		return "An object key"
	case *hclsyntax.AnonSymbolExpr:
		return "A splat symbol"
	}
	return fmt.Sprintf("This kind of expression (%T)", e)
}

func (c *compiler) literal(v cty.Value, rng hcl.Range) node {
	if v.IsNull() {
		c.errorf(rng, summaryUnsupported, "null cannot be used in a `when` condition; absent string fields are \"\" and unknown severity/facility are -1.")
		return invalid(rng)
	}
	if !v.IsKnown() {
		c.errorf(rng, summaryUnsupported, "This value is not known.")
		return invalid(rng)
	}
	switch v.Type() {
	case cty.Bool:
		return constBool(rng, v.True())
	case cty.String:
		return constStr(rng, v.AsString())
	case cty.Number:
		bf := v.AsBigFloat()
		if !bf.IsInt() {
			c.errorf(rng, summaryBadNumber, "Only whole numbers can be used in a `when` condition; got %s.", bf.Text('g', -1))
			return invalid(rng)
		}
		i, acc := bf.Int64()
		if acc != big.Exact {
			c.errorf(rng, summaryBadNumber, "The number %s is out of range.", bf.Text('g', -1))
			return invalid(rng)
		}
		return constNum(rng, i)
	}
	c.errorf(rng, summaryUnsupported, "A %s value cannot be used in a `when` condition.", v.Type().FriendlyName())
	return invalid(rng)
}

// refStep is one step after the root of a field reference: .name, ["key"],
// or [expr] (key set to the expression when it is not a literal).
type refStep struct {
	name    string
	rng     hcl.Range
	isIndex bool
	key     hclsyntax.Expression // non-nil for an index expression
	badLit  string               // non-empty when the literal key is not a string
}

// flattenRef turns a (possibly nested) traversal into its root and steps.
// ok is false when the expression is not rooted at a variable.
func flattenRef(e hclsyntax.Expression) (root hcl.TraverseRoot, steps []refStep, ok bool) {
	addTraversal := func(tr hcl.Traversal, prefix []refStep) []refStep {
		for _, t := range tr {
			switch s := t.(type) {
			case hcl.TraverseAttr:
				prefix = append(prefix, refStep{name: s.Name, rng: s.SrcRange})
			case hcl.TraverseIndex:
				st := refStep{rng: s.SrcRange, isIndex: true}
				if s.Key.IsKnown() && !s.Key.IsNull() && s.Key.Type() == cty.String {
					st.name = s.Key.AsString()
				} else {
					st.badLit = "a " + s.Key.Type().FriendlyName() + " key"
				}
				prefix = append(prefix, st)
			default: // splat
				prefix = append(prefix, refStep{rng: t.SourceRange(), badLit: "a splat ([*])"})
			}
		}
		return prefix
	}
	switch x := e.(type) {
	case *hclsyntax.ScopeTraversalExpr:
		if len(x.Traversal) == 0 {
			return root, nil, false
		}
		r, isRoot := x.Traversal[0].(hcl.TraverseRoot)
		if !isRoot {
			return root, nil, false
		}
		return r, addTraversal(x.Traversal[1:], nil), true
	case *hclsyntax.IndexExpr:
		root, steps, ok = flattenRef(x.Collection)
		if !ok {
			return root, nil, false
		}
		return root, append(steps, refStep{rng: x.Key.Range(), isIndex: true, key: x.Key}), true
	case *hclsyntax.RelativeTraversalExpr:
		root, steps, ok = flattenRef(x.Source)
		if !ok {
			return root, nil, false
		}
		return root, addTraversal(x.Traversal, steps), true
	}
	return root, nil, false
}

// reference compiles a field reference: a bare field name or sd["id"]["param"].
func (c *compiler) reference(e hclsyntax.Expression) node {
	rng := e.Range()
	root, steps, ok := flattenRef(e)
	if !ok {
		c.errorf(rng, summaryUnsupported, "Only event fields (host, severity, sd[\"id\"][\"param\"], ...) can be indexed.")
		return invalid(rng)
	}
	f, known := fieldByName[root.Name]
	if !known {
		detail := fmt.Sprintf("%q is not an event field.", root.Name)
		if s := suggest(root.Name, fieldNames[:]); s != "" {
			detail += fmt.Sprintf(" Did you mean %q?", s)
		}
		detail += " Valid fields: " + quotedList(fieldNames[:]) + "."
		c.errorf(root.SrcRange, summaryUnknownField, "%s", detail)
		return invalid(rng)
	}
	switch {
	case f == fTime:
		c.errorf(rng, summaryTimeUnsupported, "Conditions on the event time are not supported yet; route on the other fields.")
		return invalid(rng)
	case f == fSD:
		return c.sdRef(rng, steps)
	case len(steps) > 0:
		k := kNumber
		if f.isString() {
			k = kString
		}
		c.errorf(steps[0].rng, summaryBadFieldAccess, "The field %q is a %s; it has no attributes or elements. Only sd is indexed, as sd[\"id\"][\"param\"].", root.Name, k)
		return invalid(rng)
	case f.isString():
		return node{k: kString, rng: rng, fld: f, s: strGetter(f), cost: 1}
	default:
		return node{k: kNumber, rng: rng, fld: f, n: numGetter(f), cost: 1}
	}
}

func (c *compiler) sdRef(rng hcl.Range, steps []refStep) node {
	if len(steps) != 2 {
		r := rng
		if len(steps) > 2 {
			r = hcl.RangeBetween(steps[2].rng, steps[len(steps)-1].rng)
		}
		c.errorf(r, summaryBadSD, "Structured data is referenced as sd[\"sd-id\"][\"param-name\"], with exactly two string keys; got %d.", len(steps))
		return invalid(rng)
	}
	var keys [2]string
	okAll := true
	for i, st := range steps {
		switch {
		case st.key != nil:
			k := c.expr(st.key)
			switch {
			case k.k == kInvalid:
				okAll = false
			case !k.cst || k.k != kString:
				c.errorf(st.rng, summaryBadSD, "Structured-data keys must be string literals, as in sd[\"origin\"][\"ip\"].")
				okAll = false
			default:
				keys[i] = k.sv
			}
		case st.badLit != "":
			c.errorf(st.rng, summaryBadSD, "Structured-data keys must be string literals, as in sd[\"origin\"][\"ip\"]; got %s.", st.badLit)
			okAll = false
		default:
			keys[i] = st.name
		}
	}
	if !okAll {
		return invalid(rng)
	}
	return node{k: kString, rng: rng, s: sdGetter(keys[0], keys[1]), cost: 4}
}

func (c *compiler) unary(x *hclsyntax.UnaryOpExpr) node {
	v := c.expr(x.Val)
	switch x.Op {
	case hclsyntax.OpLogicalNot:
		if v.k == kInvalid {
			return invalid(x.SrcRange)
		}
		if v.k != kBool {
			c.errorCtx(v.rng, x.SrcRange, summaryBadOperand, "The operand of ! must be a bool; this is a %s.", v.k)
			return invalid(x.SrcRange)
		}
		if v.cst {
			return constBool(x.SrcRange, !v.bv)
		}
		f := v.b
		return node{k: kBool, rng: x.SrcRange, b: func(e *event.Event) bool { return !f(e) }, cost: v.cost + 1}
	case hclsyntax.OpNegate:
		if v.k == kInvalid {
			return invalid(x.SrcRange)
		}
		if v.k != kNumber || !v.cst {
			c.errorf(x.SrcRange, summaryUnsupported, "Arithmetic is not supported in a `when` condition; a minus sign is only allowed before a number literal, as in severity == -1.")
			return invalid(x.SrcRange)
		}
		return constNum(x.SrcRange, -v.nv)
	}
	c.errorf(x.SrcRange, summaryUnsupported, "This operator is not supported in a `when` condition.")
	return invalid(x.SrcRange)
}

type cmpOp uint8

const (
	opEq cmpOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

// flip returns the operator with its operands swapped (a < b ⇔ b > a).
func (o cmpOp) flip() cmpOp {
	switch o {
	case opLt:
		return opGt
	case opLe:
		return opGe
	case opGt:
		return opLt
	case opGe:
		return opLe
	}
	return o
}

func (o cmpOp) String() string {
	return [...]string{"==", "!=", "<", "<=", ">", ">="}[o]
}

func (c *compiler) binary(x *hclsyntax.BinaryOpExpr) node {
	switch x.Op {
	case hclsyntax.OpLogicalAnd, hclsyntax.OpLogicalOr:
		return c.logical(x)
	case hclsyntax.OpEqual:
		return c.compare(x, opEq)
	case hclsyntax.OpNotEqual:
		return c.compare(x, opNe)
	case hclsyntax.OpLessThan:
		return c.compare(x, opLt)
	case hclsyntax.OpLessThanOrEqual:
		return c.compare(x, opLe)
	case hclsyntax.OpGreaterThan:
		return c.compare(x, opGt)
	case hclsyntax.OpGreaterThanOrEqual:
		return c.compare(x, opGe)
	}
	// Arithmetic: still check the operands so that all errors are reported.
	c.expr(x.LHS)
	c.expr(x.RHS)
	c.errorf(x.SrcRange, summaryUnsupported, "Arithmetic (+ - * / %%) is not supported in a `when` condition.")
	return invalid(x.SrcRange)
}

func (c *compiler) logical(x *hclsyntax.BinaryOpExpr) node {
	opName := "&&"
	and := x.Op == hclsyntax.OpLogicalAnd
	if !and {
		opName = "||"
	}
	l, r := c.expr(x.LHS), c.expr(x.RHS)
	bad := false
	for _, n := range [2]node{l, r} {
		if n.k == kInvalid {
			bad = true
		} else if n.k != kBool {
			c.errorCtx(n.rng, x.SrcRange, summaryBadOperand, "The operands of %s must be bools; this is a %s.", opName, n.k)
			bad = true
		}
	}
	if bad {
		return invalid(x.SrcRange)
	}
	rng := x.SrcRange
	switch {
	case l.cst && r.cst:
		if and {
			return constBool(rng, l.bv && r.bv)
		}
		return constBool(rng, l.bv || r.bv)
	case l.cst || r.cst:
		cv, other := l.bv, r
		if r.cst {
			cv, other = r.bv, l
		}
		if and == cv { // true && x, x || false → x
			other.rng, other.fld = rng, fNone
			return other
		}
		return constBool(rng, cv) // false && x, true || x
	}
	lf, rf := l.b, r.b
	if r.cost < l.cost {
		lf, rf = rf, lf // cheaper first
	}
	cost := l.cost + r.cost + 1
	if and {
		return node{k: kBool, rng: rng, b: func(e *event.Event) bool { return lf(e) && rf(e) }, cost: cost}
	}
	return node{k: kBool, rng: rng, b: func(e *event.Event) bool { return lf(e) || rf(e) }, cost: cost}
}

// nameToNumber converts a constant string compared with severity or
// facility into its number. It reports unknown names and returns false.
func (c *compiler) nameToNumber(f fieldID, s node) (node, bool) {
	if f == fSeverity {
		v, err := event.ParseSeverity(s.sv)
		if err != nil {
			c.errorf(s.rng, summaryUnknownSev, "%q is not a severity name. Use emerg, alert, crit, err, warning, notice, info or debug (or a number 0-7).", s.sv)
			return invalid(s.rng), false
		}
		return constNum(s.rng, int64(v)), true
	}
	v, err := event.ParseFacility(s.sv)
	if err != nil {
		c.errorf(s.rng, summaryUnknownFac, "%q is not a facility name. Use kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, console, solaris-cron or local0-local7 (or a number 0-23).", s.sv)
		return invalid(s.rng), false
	}
	return constNum(s.rng, int64(v)), true
}

// convertNames applies severity/facility name conversion to a pair of
// operands: when one is the severity or facility field and the other a
// constant string, the string becomes the number it names.
func (c *compiler) convertNames(l, r node) (node, node, bool) {
	ok := true
	if l.fld.isNumber() && r.k == kString && r.cst {
		r, ok = c.nameToNumber(l.fld, r)
	} else if r.fld.isNumber() && l.k == kString && l.cst {
		l, ok = c.nameToNumber(r.fld, l)
	}
	return l, r, ok
}

func (c *compiler) compare(x *hclsyntax.BinaryOpExpr, op cmpOp) node {
	rng := x.SrcRange
	l, r := c.expr(x.LHS), c.expr(x.RHS)
	if l.k == kInvalid || r.k == kInvalid {
		// Still convert names, to report an unknown one next to another error.
		c.convertNames(l, r)
		return invalid(rng)
	}
	l, r, ok := c.convertNames(l, r)
	if !ok {
		return invalid(rng)
	}
	if op == opEq || op == opNe {
		if l.k != r.k {
			// Point at the side that is most likely wrong: a literal compared
			// with a field, else the right-hand side.
			bad, other := r, l
			if l.cst && !r.cst {
				bad, other = l, r
			}
			c.errorCtx(bad.rng, rng, summaryTypeMismatch, "Cannot compare a %s with a %s using %s.", other.k, bad.k, op)
			return invalid(rng)
		}
	} else {
		bad := false
		for _, n := range [2]node{l, r} {
			if n.k != kNumber {
				c.errorCtx(n.rng, rng, summaryBadOperand, "The operands of %s must be numbers; this is a %s.", op, n.k)
				bad = true
			}
		}
		if bad {
			return invalid(rng)
		}
	}
	n := node{k: kBool, rng: rng, cost: l.cost + r.cost + 1}
	switch l.k {
	case kNumber:
		n.b = cmpNum(op, l, r)
	case kString:
		n.b = cmpStr(op, l, r)
	case kBool:
		n.b = cmpBool(op, l, r)
	}
	if l.cst && r.cst {
		return fold(n)
	}
	return n
}

func cmpNum(op cmpOp, l, r node) func(*event.Event) bool {
	if r.cst && l.fld.isNumber() {
		return numFieldCmp(l.fld, op, r.nv)
	}
	if l.cst && r.fld.isNumber() {
		return numFieldCmp(r.fld, op.flip(), l.nv)
	}
	lf, rf := l.numFn(), r.numFn()
	switch op {
	case opEq:
		return func(e *event.Event) bool { return lf(e) == rf(e) }
	case opNe:
		return func(e *event.Event) bool { return lf(e) != rf(e) }
	case opLt:
		return func(e *event.Event) bool { return lf(e) < rf(e) }
	case opLe:
		return func(e *event.Event) bool { return lf(e) <= rf(e) }
	case opGt:
		return func(e *event.Event) bool { return lf(e) > rf(e) }
	default:
		return func(e *event.Event) bool { return lf(e) >= rf(e) }
	}
}

func cmpStr(op cmpOp, l, r node) func(*event.Event) bool {
	neg := op == opNe
	if l.cst && r.cst {
		lv, rv := l.sv, r.sv
		return func(*event.Event) bool { return (lv == rv) != neg }
	}
	if r.cst && l.fld.isString() {
		return strFieldEq(l.fld, r.sv, neg)
	}
	if l.cst && r.fld.isString() {
		return strFieldEq(r.fld, l.sv, neg)
	}
	if r.cst || l.cst {
		f, v := l.s, r.sv
		if l.cst {
			f, v = r.s, l.sv
		}
		if neg {
			return func(e *event.Event) bool { return f(e) != v }
		}
		return func(e *event.Event) bool { return f(e) == v }
	}
	lf, rf := l.strFn(), r.strFn()
	if neg {
		return func(e *event.Event) bool { return lf(e) != rf(e) }
	}
	return func(e *event.Event) bool { return lf(e) == rf(e) }
}

func cmpBool(op cmpOp, l, r node) func(*event.Event) bool {
	neg := op == opNe
	if l.cst || r.cst {
		f, v := l.b, r.bv
		if l.cst {
			f, v = r.b, l.bv
		}
		if f == nil { // both constant: folded by the caller
			lv, rv := l.bv, r.bv
			return func(*event.Event) bool { return (lv == rv) != neg }
		}
		if v != neg { // x == true, x != false
			return f
		}
		return func(e *event.Event) bool { return !f(e) }
	}
	lf, rf := l.b, r.b
	if neg {
		return func(e *event.Event) bool { return lf(e) != rf(e) }
	}
	return func(e *event.Event) bool { return lf(e) == rf(e) }
}

func (c *compiler) conditional(x *hclsyntax.ConditionalExpr) node {
	rng := x.SrcRange
	cond, t, f := c.expr(x.Condition), c.expr(x.TrueResult), c.expr(x.FalseResult)
	bad := false
	if cond.k != kInvalid && cond.k != kBool {
		c.errorCtx(cond.rng, rng, summaryBadOperand, "The condition of ? : must be a bool; this is a %s.", cond.k)
		bad = true
	}
	if cond.k == kInvalid || t.k == kInvalid || f.k == kInvalid || bad {
		return invalid(rng)
	}
	if t.k != f.k {
		c.errorCtx(f.rng, rng, summaryTypeMismatch, "Both results of ? : must have the same type; the first is a %s, this one is a %s.", t.k, f.k)
		return invalid(rng)
	}
	if cond.cst {
		res := f
		if cond.bv {
			res = t
		}
		res.rng, res.fld = rng, fNone
		return res
	}
	cf := cond.b
	n := node{k: t.k, rng: rng, cost: cond.cost + max(t.cost, f.cost) + 1}
	switch t.k {
	case kString:
		tf, ff := t.strFn(), f.strFn()
		n.s = func(e *event.Event) string {
			if cf(e) {
				return tf(e)
			}
			return ff(e)
		}
	case kNumber:
		tf, ff := t.numFn(), f.numFn()
		n.n = func(e *event.Event) int64 {
			if cf(e) {
				return tf(e)
			}
			return ff(e)
		}
	case kBool:
		tf, ff := t.boolFn(), f.boolFn()
		n.b = func(e *event.Event) bool {
			if cf(e) {
				return tf(e)
			}
			return ff(e)
		}
	}
	return n
}
