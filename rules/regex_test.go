package rules

import (
	"net/netip"
	"regexp"
	"testing"
)

var regexSubjects = []string{
	"", "a", "sshd", "sudo", "su", "ssh", "xsshd", "sshdx", "SSHD", "web-1", "web-10", "web-", "db-2",
	"nginx", "haproxy", "error: disk full", "ERROR", "warn", "abc", "ab", "ac", "é", "xéx", "\xff", "a\nb",
	"\xc3\xc3\xa9", "foo.bar", "foo_bar", "colour", "color",
}

func TestRegexLiteralForms(t *testing.T) {
	cases := []struct {
		pattern string
		kind    matchKind
	}{
		{"^(sshd|sudo|su)$", mExact},
		{"^sshd$", mExact},
		{"^web-[0-9]$", mExact},
		{"^colou?r$", mExact},
		{"^(?:nginx|haproxy)$", mExact},
		{"^(a|b|c|d|e|f|g|h|i|j)$", mExact},
		{"^ssh", mPrefix},
		{"^(ssh|su)", mPrefix},
		{"d$", mSuffix},
		{"-[12]$", mSuffix},
		{"error", mContains},
		{"error|warn", mContains},
		{"foo\\.bar", mContains},
		{"", mContains},
		{"^", mPrefix},
		{"^$", mExact},
		{"é", mContains},
		{"a?", mContains},
		{"[^\\x00-\\x{10FFFF}]", mContains}, // matches nothing
		// not finite or not handled: the regexp engine
		{"^web-[0-9]+$", mRegexp},
		{"(?i)error", mRegexp},
		{"^ss.d$", mRegexp},
		{"\\bsu\\b", mRegexp},
		{"^a|b$", mRegexp},
		{"(?m)^a$", mRegexp},
		{"[a-z]{3}", mRegexp},
		{"\\x{FFFD}", mRegexp},
		{"foo.bar", mRegexp},
	}
	for _, tc := range cases {
		m, err := compileRegex(tc.pattern)
		if err != nil {
			t.Fatalf("%q: %v", tc.pattern, err)
		}
		if m.kind != tc.kind {
			t.Errorf("%q: kind %d, want %d (lits %q)", tc.pattern, m.kind, tc.kind, m.lits)
		}
		re := regexp.MustCompile(tc.pattern)
		for _, s := range regexSubjects {
			if got, want := m.match(s), re.MatchString(s); got != want {
				t.Errorf("%q on %q: got %v, regexp says %v", tc.pattern, s, got, want)
			}
		}
	}
}

func FuzzRegexMatch(f *testing.F) {
	for _, p := range []string{"^(sshd|sudo|su)$", "^web-[0-9]$", "error|warn", "^colou?r", "d$", "é", "[ab][cd]", "(?i)x", ""} {
		for _, s := range regexSubjects[:6] {
			f.Add(p, s)
		}
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return
		}
		m, err := compileRegex(pattern)
		if err != nil {
			t.Fatalf("compileRegex(%q): %v, regexp accepted it", pattern, err)
		}
		if got, want := m.match(s), re.MatchString(s); got != want {
			t.Fatalf("%q on %q: got %v, regexp says %v (kind %d, lits %q)", pattern, s, got, want, m.kind, m.lits)
		}
	})
}

// referenceOrigin is what parseOrigin must compute, using net/netip.
func referenceOrigin(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone(""), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone(""), true
	}
	return netip.Addr{}, false
}

var originSamples = []string{
	"10.1.2.3", "10.1.2.3:514", "10.1.2.3:65535", "10.1.2.3:65536", "10.1.2.3:", ":514", "10.1.2.3:0514",
	"010.1.2.3", "10.1.2", "10.1.2.3.4", "256.1.2.3", "1..2.3", "10.1.2.3:x",
	"::1", "[::1]:514", "[::1]", "[10.1.2.3]:514", "::1:514", "2001:db8::1", "[2001:db8::1%eth0]:601",
	"fe80::1%eth0", "fe80::1%", "::ffff:10.9.8.7", "[::ffff:10.9.8.7]:514", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9",
	"1::2::3", "::", ":::", "12345::", "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4",
	"/var/log/syslog", "host.example:514", "", "%", "a.b.c.d", "1.2.3.4%eth0",
}

func TestParseOrigin(t *testing.T) {
	for _, s := range originSamples {
		got, ok := parseOrigin(s)
		want, wantOK := referenceOrigin(s)
		if ok != wantOK || got != want {
			t.Errorf("parseOrigin(%q) = %v, %v; netip gives %v, %v", s, got, ok, want, wantOK)
		}
		checkIPv4Origin(t, s)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, s := range originSamples {
			parseOrigin(s)
		}
	})
	if allocs != 0 {
		t.Errorf("parseOrigin allocates %.1f times", allocs)
	}
}

// checkIPv4Origin checks the IPv4 fast path against parseOrigin: it must
// accept exactly the IPv4 results that do not come from an IPv6 form.
func checkIPv4Origin(t *testing.T, s string) {
	t.Helper()
	v, ok := parseIPv4Origin(s)
	a, aok := parseOrigin(s)
	wantOK := aok && a.Is4()
	if ok != wantOK {
		t.Fatalf("parseIPv4Origin(%q) ok=%v, parseOrigin gives %v, %v", s, ok, a, aok)
	}
	if ok {
		b := a.As4()
		if want := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]); v != want {
			t.Fatalf("parseIPv4Origin(%q) = %08x, want %08x", s, v, want)
		}
	}
}

func FuzzParseOrigin(f *testing.F) {
	for _, s := range originSamples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseOrigin(s)
		want, wantOK := referenceOrigin(s)
		if ok != wantOK || got != want {
			t.Fatalf("parseOrigin(%q) = %v, %v; netip gives %v, %v", s, got, ok, want, wantOK)
		}
		checkIPv4Origin(t, s)
	})
}
