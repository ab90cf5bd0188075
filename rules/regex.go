package rules

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sluicelog/sluice/router/event"
)

// matchKind is how a regexmatch pattern is evaluated.
type matchKind uint8

const (
	mRegexp   matchKind = iota // the regexp package
	mExact                     // ^(a|b|c)$: s is one of lits
	mPrefix                    // ^(a|b): s starts with one of lits
	mSuffix                    // (a|b)$: s ends with one of lits
	mContains                  // a|b: s contains one of lits
)

// maxLiterals bounds the finite languages turned into string tests.
const maxLiterals = 32

// strMatcher is a compiled regexmatch pattern. Patterns whose language is a
// small finite set of strings (literals, alternations, small character
// classes, optional parts), optionally anchored with ^ and $, are matched
// with string comparisons instead of the regexp engine; the result is the
// same as regexp.MatchString.
type strMatcher struct {
	kind   matchKind
	lits   []string
	set    map[string]struct{} // mExact with more than smallSet literals
	re     *regexp.Regexp
	prefix string // mRegexp: a literal every match starts with (prefilter)
}

// compileRegex compiles an RE2 pattern (regexp syntax) once.
func compileRegex(pattern string) (*strMatcher, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	if lits, k, ok := literalForm(pattern); ok {
		m := &strMatcher{kind: k, lits: lits}
		if k == mExact && len(lits) > smallSet {
			m.set = make(map[string]struct{}, len(lits))
			for _, l := range lits {
				m.set[l] = struct{}{}
			}
		}
		return m, nil
	}
	m := &strMatcher{kind: mRegexp, re: re}
	m.prefix, _ = re.LiteralPrefix()
	return m, nil
}

// match reports whether s matches; it equals regexp.MatchString(pattern, s).
func (m *strMatcher) match(s string) bool {
	switch m.kind {
	case mExact:
		if m.set != nil {
			_, ok := m.set[s]
			return ok
		}
		for _, l := range m.lits {
			if s == l {
				return true
			}
		}
		return false
	case mPrefix:
		for _, l := range m.lits {
			if strings.HasPrefix(s, l) {
				return true
			}
		}
		return false
	case mSuffix:
		for _, l := range m.lits {
			if strings.HasSuffix(s, l) {
				return true
			}
		}
		return false
	case mContains:
		for _, l := range m.lits {
			if strings.Contains(s, l) {
				return true
			}
		}
		return false
	}
	if m.prefix != "" && !strings.Contains(s, m.prefix) {
		return false
	}
	return m.re.MatchString(s)
}

// cost estimates the cost of match relative to a field comparison.
func (m *strMatcher) cost() int {
	if m.kind == mRegexp {
		return 30
	}
	return 2 + len(m.lits)/4
}

// predicate returns the compiled test of g(e) against the pattern, with
// the common single-literal cases inlined.
func (m *strMatcher) predicate(g func(*event.Event) string) func(*event.Event) bool {
	if len(m.lits) == 1 {
		l := m.lits[0]
		switch m.kind {
		case mExact:
			return func(e *event.Event) bool { return g(e) == l }
		case mPrefix:
			return func(e *event.Event) bool { return strings.HasPrefix(g(e), l) }
		case mSuffix:
			return func(e *event.Event) bool { return strings.HasSuffix(g(e), l) }
		case mContains:
			return func(e *event.Event) bool { return strings.Contains(g(e), l) }
		}
	}
	return func(e *event.Event) bool { return m.match(g(e)) }
}

// literalForm reports whether pattern matches exactly when the subject
// equals / starts with / ends with / contains one of a small set of
// strings, and returns that set.
func literalForm(pattern string) ([]string, matchKind, bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, 0, false
	}
	re = re.Simplify()
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	begin, end := false, false
	if len(subs) > 0 && subs[0].Op == syntax.OpBeginText {
		begin, subs = true, subs[1:]
	}
	if len(subs) > 0 && subs[len(subs)-1].Op == syntax.OpEndText {
		end, subs = true, subs[:len(subs)-1]
	}
	set := []string{""}
	for _, s := range subs {
		var ok bool
		if set, ok = concatSets(set, s); !ok {
			return nil, 0, false
		}
	}
	slices.Sort(set)
	set = slices.Compact(set)
	k := mContains
	switch {
	case begin && end:
		k = mExact
	case begin:
		k = mPrefix
	case end:
		k = mSuffix
	}
	if k != mExact && slices.Contains(set, "") {
		// Every string has "" as prefix, suffix and substring.
		set = []string{""}
	}
	return set, k, true
}

// concatSets returns {a+b : a in prefixes, b in lang(re)}, if lang(re) is
// finite and the result has at most maxLiterals strings.
func concatSets(prefixes []string, re *syntax.Regexp) ([]string, bool) {
	lang, ok := language(re)
	if !ok || len(prefixes)*len(lang) > maxLiterals {
		return nil, false
	}
	out := make([]string, 0, len(prefixes)*len(lang))
	for _, p := range prefixes {
		for _, s := range lang {
			out = append(out, p+s)
		}
	}
	return out, true
}

// language returns the finite set of strings re matches in full, or false
// when it is infinite, too large, or uses a construct not handled here
// (case folding, anchors inside, word boundaries, any-char, repetition).
func language(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpNoMatch:
		return nil, true
	case syntax.OpEmptyMatch:
		return []string{""}, true
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return nil, false
		}
		for _, r := range re.Rune {
			if r == utf8.RuneError || !utf8.ValidRune(r) {
				return nil, false
			}
		}
		return []string{string(re.Rune)}, true
	case syntax.OpCharClass:
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if int(hi-lo)+1+len(out) > maxLiterals {
				return nil, false
			}
			for r := lo; r <= hi; r++ {
				if r == utf8.RuneError || !utf8.ValidRune(r) {
					return nil, false
				}
				out = append(out, string(r))
			}
		}
		return out, true
	case syntax.OpCapture:
		return language(re.Sub[0])
	case syntax.OpConcat:
		set := []string{""}
		for _, s := range re.Sub {
			var ok bool
			if set, ok = concatSets(set, s); !ok {
				return nil, false
			}
		}
		return set, true
	case syntax.OpAlternate:
		var out []string
		for _, s := range re.Sub {
			l, ok := language(s)
			if !ok || len(out)+len(l) > maxLiterals {
				return nil, false
			}
			out = append(out, l...)
		}
		return out, true
	case syntax.OpQuest:
		l, ok := language(re.Sub[0])
		if !ok || len(l)+1 > maxLiterals {
			return nil, false
		}
		return append([]string{""}, l...), true
	}
	return nil, false
}
