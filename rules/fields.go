package rules

import (
	"strings"

	"github.com/sluicelog/sluice/router/event"
)

// fieldID names an event field a condition can refer to.
type fieldID uint8

const (
	fNone fieldID = iota
	fInput
	fStream
	fOrigin
	fHost
	fApp
	fProcID
	fMsgID
	fMessage
	fFacility
	fSeverity
	fTime
	fSD
)

// fieldByName maps the identifiers usable in a condition to their field.
// Read-only.
var fieldByName = map[string]fieldID{
	"input":    fInput,
	"stream":   fStream,
	"origin":   fOrigin,
	"host":     fHost,
	"app":      fApp,
	"procid":   fProcID,
	"msgid":    fMsgID,
	"message":  fMessage,
	"facility": fFacility,
	"severity": fSeverity,
	"time":     fTime,
	"sd":       fSD,
}

// fieldNames lists the field identifiers in documentation order, for
// diagnostics and suggestions. Read-only.
var fieldNames = [...]string{
	"input", "stream", "origin", "host", "app", "procid", "msgid", "message",
	"facility", "severity", "sd", "time",
}

func (f fieldID) isString() bool { return f >= fInput && f <= fMessage }

func (f fieldID) isNumber() bool { return f == fFacility || f == fSeverity }

func (f fieldID) String() string {
	for name, id := range fieldByName {
		if id == f {
			return name
		}
	}
	return "?"
}

// String field getters. They are top-level functions so that taking their
// value does not allocate.
func getInput(e *event.Event) string   { return e.Input }
func getStream(e *event.Event) string  { return e.Stream }
func getOrigin(e *event.Event) string  { return e.Origin }
func getHost(e *event.Event) string    { return e.Host }
func getApp(e *event.Event) string     { return e.App }
func getProcID(e *event.Event) string  { return e.ProcID }
func getMsgID(e *event.Event) string   { return e.MsgID }
func getMessage(e *event.Event) string { return e.Message }

func getFacility(e *event.Event) int64 { return int64(e.Facility) }
func getSeverity(e *event.Event) int64 { return int64(e.Severity) }

func strGetter(f fieldID) func(*event.Event) string {
	switch f {
	case fInput:
		return getInput
	case fStream:
		return getStream
	case fOrigin:
		return getOrigin
	case fHost:
		return getHost
	case fApp:
		return getApp
	case fProcID:
		return getProcID
	case fMsgID:
		return getMsgID
	case fMessage:
		return getMessage
	}
	panic("rules: not a string field: " + f.String())
}

func numGetter(f fieldID) func(*event.Event) int64 {
	switch f {
	case fFacility:
		return getFacility
	case fSeverity:
		return getSeverity
	}
	panic("rules: not a number field: " + f.String())
}

// strFieldEq returns a predicate comparing one string field with a constant,
// without going through a getter (one indirect call per evaluation).
func strFieldEq(f fieldID, s string, neg bool) func(*event.Event) bool {
	if neg {
		switch f {
		case fInput:
			return func(e *event.Event) bool { return e.Input != s }
		case fStream:
			return func(e *event.Event) bool { return e.Stream != s }
		case fOrigin:
			return func(e *event.Event) bool { return e.Origin != s }
		case fHost:
			return func(e *event.Event) bool { return e.Host != s }
		case fApp:
			return func(e *event.Event) bool { return e.App != s }
		case fProcID:
			return func(e *event.Event) bool { return e.ProcID != s }
		case fMsgID:
			return func(e *event.Event) bool { return e.MsgID != s }
		case fMessage:
			return func(e *event.Event) bool { return e.Message != s }
		}
	} else {
		switch f {
		case fInput:
			return func(e *event.Event) bool { return e.Input == s }
		case fStream:
			return func(e *event.Event) bool { return e.Stream == s }
		case fOrigin:
			return func(e *event.Event) bool { return e.Origin == s }
		case fHost:
			return func(e *event.Event) bool { return e.Host == s }
		case fApp:
			return func(e *event.Event) bool { return e.App == s }
		case fProcID:
			return func(e *event.Event) bool { return e.ProcID == s }
		case fMsgID:
			return func(e *event.Event) bool { return e.MsgID == s }
		case fMessage:
			return func(e *event.Event) bool { return e.Message == s }
		}
	}
	panic("rules: not a string field: " + f.String())
}

// numFieldCmp returns a predicate comparing severity or facility with a
// constant.
// numFieldCmp compiles severity/facility OP constant. Ordering comparisons
// are false when the field is unknown (-1): an unparsed line is not
// "err or worse". Equality still selects unknown events with == -1.
func numFieldCmp(f fieldID, op cmpOp, c int64) func(*event.Event) bool {
	if f == fSeverity {
		switch op {
		case opEq:
			return func(e *event.Event) bool { return int64(e.Severity) == c }
		case opNe:
			return func(e *event.Event) bool { return int64(e.Severity) != c }
		case opLt:
			return func(e *event.Event) bool { return e.Severity >= 0 && int64(e.Severity) < c }
		case opLe:
			return func(e *event.Event) bool { return e.Severity >= 0 && int64(e.Severity) <= c }
		case opGt:
			return func(e *event.Event) bool { return e.Severity >= 0 && int64(e.Severity) > c }
		case opGe:
			return func(e *event.Event) bool { return e.Severity >= 0 && int64(e.Severity) >= c }
		}
	} else if f == fFacility {
		switch op {
		case opEq:
			return func(e *event.Event) bool { return int64(e.Facility) == c }
		case opNe:
			return func(e *event.Event) bool { return int64(e.Facility) != c }
		case opLt:
			return func(e *event.Event) bool { return e.Facility >= 0 && int64(e.Facility) < c }
		case opLe:
			return func(e *event.Event) bool { return e.Facility >= 0 && int64(e.Facility) <= c }
		case opGt:
			return func(e *event.Event) bool { return e.Facility >= 0 && int64(e.Facility) > c }
		case opGe:
			return func(e *event.Event) bool { return e.Facility >= 0 && int64(e.Facility) >= c }
		}
	}
	panic("rules: bad number field comparison")
}

// sdGetter returns the getter for sd[id][param]; "" when absent.
func sdGetter(id, param string) func(*event.Event) string {
	return func(e *event.Event) string {
		v, _ := e.SD.Get(id, param)
		return v
	}
}

// suggest returns the candidate closest to given (edit distance < 3), or "".
// Earlier candidates win ties.
func suggest(given string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(given, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64 // far enough: no suggestion
	}
	var rowBuf [65]int
	row := rowBuf[:len(b)+1]
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(a); i++ {
		prev := row[0]
		row[0] = i
		for j := 1; j <= len(b); j++ {
			cur := row[j]
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			row[j] = min(row[j]+1, row[j-1]+1, prev+cost)
			prev = cur
		}
	}
	return row[len(b)]
}

func quotedList(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n)
	}
	return b.String()
}
