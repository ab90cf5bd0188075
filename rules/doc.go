// Package rules compiles route conditions (the `when` attribute of a
// `route` block) into Go closures, and evaluates a table of compiled routes
// against events.
//
// A condition is written in HCL native syntax, is type-checked when the
// configuration is loaded, and is compiled once into a Predicate. Events are
// never evaluated with cty: a compiled predicate costs tens of nanoseconds
// and no allocation, against microseconds and dozens of allocations for
// HCL's own evaluation. Every mistake is reported at load time as an
// hcl.Diagnostic pointing at the offending sub-expression.
//
// # Condition language reference
//
//	when = facility == "auth" || (severity <= "err" && host != "noisy-box")
//
// Fields (bare names):
//
//	input     string  name of the input block that produced the event
//	stream    string  stream type (the input's `stream` setting)
//	origin    string  peer address ("ip:port") or file path
//	host      string  syslog HOSTNAME
//	app       string  syslog APP-NAME (RFC 3164 TAG)
//	procid    string  syslog PROCID
//	msgid     string  syslog MSGID
//	message   string  the MSG part (the whole line if it did not parse)
//	facility  number  0 (kern) … 23 (local7); -1 when unknown
//	severity  number  0 (emerg) … 7 (debug); -1 when unknown
//	sd["sd-id"]["param"]  string  RFC 5424 structured data; "" when absent
//
// Unknown severity and facility are -1 (lines that parsed as neither
// RFC 5424 nor RFC 3164, such as most tailed files). An unknown value
// satisfies no ordering comparison: severity <= "err" is false for it, and
// so is severity >= 0. Write severity == -1 to select such events.
//
// Absent string fields are "". The keys of sd must be string literals;
// sd.id.param is accepted too when both names are valid identifiers. The
// event time cannot be used yet. Any other name is an error ("Unknown event
// field", with a suggestion for near misses).
//
// Literals: strings in double quotes (no ${…} or %{…} templates; write $${
// for a literal "${"), whole numbers (a leading minus is allowed, as in
// severity == -1), true and false. Lists such as ["auth", "authpriv"] are
// allowed only as the first argument of contains.
//
// Operators, by increasing precedence as in HCL: the conditional
// c ? a : b (c a bool, a and b of the same type); ||; &&; == and !=
// (strings, numbers or bools, both sides of the same type); < <= > >=
// (numbers only); the prefix ! (bools). Parentheses group. There is no
// arithmetic. Nothing in a condition has side effects or fails at run
// time, so && and || stop at the operand that decides the result, and the
// compiler evaluates the cheaper operand first.
//
// Severity and facility names: where severity or facility is compared with
// a string literal (==, !=, <, <=, >, >=, or a list element of contains),
// the string is the name of a number, converted when the configuration is
// loaded. Lower severity numbers are more severe, so severity <= "warning"
// selects warning, err, crit, alert and emerg. Severity names: emerg, alert,
// crit, err, warning, notice, info, debug, and the aliases emergency, panic,
// critical, error, warn, informational. Facility names: kern, user, mail,
// daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security,
// console, solaris-cron, local0 … local7. An unknown name is an error.
//
// Functions (names as in Terraform/OpenTofu):
//
//	contains(list, value)        value is one of the literal list's elements
//	                             (strings or numbers; names for severity/facility)
//	strcontains(s, substr)       s contains substr
//	startswith(s, prefix)        s starts with prefix
//	endswith(s, suffix)          s ends with suffix
//	regexmatch(s, "pattern")     s matches the RE2 pattern (Go regexp syntax,
//	                             unanchored; use ^ and $ to anchor). The
//	                             pattern must be a literal and is compiled once.
//	cidrcontains("prefix", addr) addr is an IP inside the CIDR prefix; addr may
//	                             be "ip:port", "[ipv6]:port" or a bare IP, and
//	                             anything else (a file path, a host name) is
//	                             false. IPv4-mapped IPv6 addresses match IPv4
//	                             prefixes; an IPv6 zone is ignored.
//	lower(s), upper(s)           s in lower / upper case (allocates when s
//	                             has characters to change)
//
// String arguments may be any string expression (a field, a literal,
// sd[…][…], lower(host), …), except the regexmatch pattern and the
// cidrcontains prefix, which must be constant.
//
// Examples:
//
//	when = stream == "nginx_access" && !startswith(message, "GET /healthz")
//	when = contains(["auth", "authpriv"], facility) || severity <= "crit"
//	when = cidrcontains("10.0.0.0/8", origin) && regexmatch(app, "^(sshd|sudo)$")
//	when = sd["origin"]["software"] == "nginx"
//
// # Performance
//
// Constant sub-expressions are folded when compiling, and common shapes
// (a field compared with a constant, membership in a list) compile to a
// single closure. Patterns of regexmatch whose language is a small finite
// set of strings, optionally anchored (such as "^(sshd|sudo)$" or "error"),
// are evaluated as string comparisons; other patterns use the regexp
// package, after a check for their literal prefix.
//
// # Routing
//
// A Table holds the compiled routes in order. The first matching route
// wins, unless it has Continue; a matching Drop route (or one with no
// outputs) stops evaluation; events no route matched go to the table's
// unmatched outputs. See Table.Route for the exact contract.
package rules
