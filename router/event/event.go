// Package event defines the Event, the unit that flows from inputs through the
// routing rules to outputs. It is a leaf package: rules, inputs and outputs
// import it without importing the router.
package event

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Event is one log record.
//
// An Event is immutable once an input has handed it to a Sink: the router
// shares one *Event between every output that a route chose, and outputs
// read it concurrently. Nobody may modify an Event (including the Raw slice
// and the SD maps) after Emit. Inputs must therefore give each Event its own
// Raw bytes, never a slice of a reused read buffer.
type Event struct {
	Received time.Time // when the input read it
	Time     time.Time // the syslog TIMESTAMP if present, else Received

	Input  string // name of the input block that produced it
	Stream string // stream type (input's `stream` setting), used by routes and templates
	Origin string // peer address ("ip:port") or file path

	// Syslog header. Facility and Severity are -1 when unknown (for example a
	// line that parsed as neither RFC 5424 nor RFC 3164).
	Facility Facility
	Severity Severity
	Host     string
	App      string
	ProcID   string
	MsgID    string

	Message string // MSG part, or the whole line when it did not parse

	// SD is RFC 5424 structured data in the order received; nil when absent.
	SD StructuredData

	// Raw is the original frame exactly as received, without transport
	// framing (no octet count, no trailing LF). Forwarding in `raw` format
	// writes these bytes unchanged.
	Raw []byte
}

// Severity is the syslog severity, 0 (emerg) to 7 (debug); -1 is unknown.
type Severity int8

// Facility is the syslog facility, 0 (kern) to 23 (local7); -1 is unknown.
type Facility int8

var severityNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

var facilityNames = [...]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

// severityAliases are the other spellings rsyslog and syslog-ng accept.
var severityAliases = map[string]Severity{
	"emergency": 0, "panic": 0, "critical": 2, "error": 3, "warn": 4, "informational": 6,
}

// String returns the keyword ("err"), or the number for out-of-range values.
func (s Severity) String() string {
	if s >= 0 && int(s) < len(severityNames) {
		return severityNames[s]
	}
	return strconv.Itoa(int(s))
}

// String returns the keyword ("local0"), or the number for out-of-range values.
func (f Facility) String() string {
	if f >= 0 && int(f) < len(facilityNames) {
		return facilityNames[f]
	}
	return strconv.Itoa(int(f))
}

// ParseSeverity maps a name ("warning", "warn", "err", "error", …) to its number.
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if n == name {
			return Severity(i), nil
		}
	}
	if s, ok := severityAliases[name]; ok {
		return s, nil
	}
	return -1, fmt.Errorf("unknown severity %q (want one of emerg, alert, crit, err, warning, notice, info, debug)", name)
}

// ParseFacility maps a name ("auth", "local3", …) to its number.
func ParseFacility(name string) (Facility, error) {
	for i, n := range facilityNames {
		if n == name {
			return Facility(i), nil
		}
	}
	return -1, fmt.Errorf("unknown facility %q (want kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, console, solaris-cron or local0…local7)", name)
}

// Priority returns the syslog PRI value (facility*8 + severity), or -1 if
// either part is unknown.
func (e *Event) Priority() int {
	if e.Facility < 0 || e.Severity < 0 {
		return -1
	}
	return int(e.Facility)*8 + int(e.Severity)
}

// StructuredData is RFC 5424 STRUCTURED-DATA: its elements in the order
// received. A slice rather than a map keeps that order (so re-encoding is
// faithful) and lets parsers carve elements from shared slabs instead of
// allocating two maps per message.
type StructuredData []SDElement

// SDElement is one SD-ELEMENT: an SD-ID and its parameters in order.
type SDElement struct {
	ID     string
	Params []SDParam
}

// SDParam is one SD-PARAM; Value is unescaped.
type SDParam struct {
	Name, Value string
}

// Get returns the value of param in the first element with id, and whether
// it is present.
func (sd StructuredData) Get(id, param string) (string, bool) {
	for i := range sd {
		if sd[i].ID != id {
			continue
		}
		for _, p := range sd[i].Params {
			if p.Name == param {
				return p.Value, true
			}
		}
		return "", false
	}
	return "", false
}

// SDFromMap converts the nested-map form some parsers produce, sorting
// elements by ID and parameters by name so the result is deterministic.
// It returns nil for an empty map.
func SDFromMap(m map[string]map[string]string) StructuredData {
	if len(m) == 0 {
		return nil
	}
	sd := make(StructuredData, 0, len(m))
	for id, params := range m {
		el := SDElement{ID: id, Params: make([]SDParam, 0, len(params))}
		for k, v := range params {
			el.Params = append(el.Params, SDParam{Name: k, Value: v})
		}
		slices.SortFunc(el.Params, func(a, b SDParam) int { return strings.Compare(a.Name, b.Name) })
		sd = append(sd, el)
	}
	slices.SortFunc(sd, func(a, b SDElement) int { return strings.Compare(a.ID, b.ID) })
	return sd
}
