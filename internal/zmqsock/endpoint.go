package zmqsock

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/sluicelog/sluice/internal/conf"
)

// ValidateEndpoints checks a list of endpoints a socket binds (bind true) or
// connects to. Accepted forms:
//
//	tcp://HOST:PORT   HOST an IP address ([…] for IPv6) or a name; when
//	                  binding also "*" (every interface) or an interface
//	                  name. PORT 1-65535; when binding also "*" or 0 (a
//	                  free port, chosen by the system).
//	ipc://PATH        a Unix domain socket ("ipc://@name": abstract)
//
// It returns one error per bad or repeated entry.
func ValidateEndpoints(eps []string, bind bool) []error {
	var errs []error
	seen := map[string]bool{}
	for _, ep := range eps {
		if err := validateEndpoint(ep, bind); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[ep] {
			errs = append(errs, fmt.Errorf("endpoint %q is listed twice", ep))
		}
		seen[ep] = true
	}
	return errs
}

func validateEndpoint(ep string, bind bool) error {
	scheme, rest, ok := strings.Cut(ep, "://")
	if !ok {
		return fmt.Errorf("invalid endpoint %q (want \"tcp://HOST:PORT\" or \"ipc://PATH\")", ep)
	}
	switch scheme {
	case "tcp":
	case "ipc":
		if rest == "" || rest == "@" {
			return fmt.Errorf("invalid endpoint %q: empty path", ep)
		}
		return nil
	default:
		return fmt.Errorf("invalid endpoint %q: unsupported transport %q (want tcp or ipc)", ep, scheme)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return fmt.Errorf("invalid endpoint %q: want tcp://HOST:PORT", ep)
	}
	if host == "" {
		if bind {
			return fmt.Errorf("invalid endpoint %q: empty host (use \"*\" for every interface)", ep)
		}
		return fmt.Errorf("invalid endpoint %q: empty host", ep)
	}
	if strings.ContainsAny(host, "/?#@;, ") {
		return fmt.Errorf("invalid endpoint %q: bad host %q", ep, host)
	}
	if host == "*" && !bind {
		return fmt.Errorf("invalid endpoint %q: \"*\" only makes sense when binding; name the host to connect to", ep)
	}
	if port == "*" {
		if !bind {
			return fmt.Errorf("invalid endpoint %q: a connect endpoint needs a port number", ep)
		}
		return nil
	}
	p, err := strconv.Atoi(port)
	switch {
	case err != nil || p < 0 || p > 65535:
		return fmt.Errorf("invalid endpoint %q: port %q is not a number from 1 to 65535", ep, port)
	case p == 0 && !bind:
		return fmt.Errorf("invalid endpoint %q: port 0 (a connect endpoint needs the peer's port)", ep)
	}
	return nil
}

// errNoEndpoint is the message for a socket with neither bind nor connect.
var errNoEndpoint = errors.New("set bind (endpoints to listen on) or connect (endpoints to connect to); both are empty")

// ValidateBindConnect checks a socket's bind and connect lists: exactly one
// of them must be non-empty (a socket's CURVE role, server or client,
// follows from it), and every endpoint must be valid. Errors are
// *conf.FieldError values for "bind" or "connect".
func ValidateBindConnect(bind, connect []string) []error {
	var errs []error
	switch {
	case len(bind) == 0 && len(connect) == 0:
		errs = append(errs, conf.Field("bind", errNoEndpoint))
	case len(bind) > 0 && len(connect) > 0:
		errs = append(errs, conf.Field("connect", errors.New("set bind or connect, not both: one socket either listens (bind) or connects, and its CURVE role follows from that")))
	}
	for _, err := range ValidateEndpoints(bind, true) {
		errs = append(errs, conf.Field("bind", err))
	}
	for _, err := range ValidateEndpoints(connect, false) {
		errs = append(errs, conf.Field("connect", err))
	}
	return errs
}

// EndpointList converts a decoded bind or connect attribute: null, one
// endpoint string, or a list (or tuple, or set) of them.
func EndpointList(v cty.Value) ([]string, error) {
	if v == cty.NilVal || v.IsNull() {
		return nil, nil
	}
	if !v.IsWhollyKnown() {
		return nil, errors.New("value is not known when the configuration loads")
	}
	t := v.Type()
	switch {
	case t == cty.String:
		if v.AsString() == "" {
			return nil, nil
		}
		return []string{v.AsString()}, nil
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		var out []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if e.IsNull() || e.Type() != cty.String {
				return nil, fmt.Errorf("want endpoint strings, found a %s", e.Type().FriendlyName())
			}
			out = append(out, e.AsString())
		}
		return out, nil
	}
	return nil, fmt.Errorf("want an endpoint string or a list of them, got a %s", t.FriendlyName())
}
