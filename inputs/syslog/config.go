package syslog

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/internal/tlsconf"
)

// Limits of the configuration values.
const (
	// MaxMessageBytesLimit is the largest accepted max_message_bytes (16 MiB).
	MaxMessageBytesLimit = 16 << 20
	maxUDPReaders        = 64
	maxUDPReadBuffer     = 1 << 30
	// maxHandshakeTimeout bounds the TLS handshake of a connection; a
	// shorter idle_timeout (not 0) bounds it instead.
	maxHandshakeTimeout = 10 * time.Second
)

// Config is the body of an `input "syslog" "NAME" { ... }` block. Sizes and
// durations stay strings as written; New converts and validates them.
type Config struct {
	// Listen lists the addresses to serve, each "udp://host:port",
	// "tcp://host:port" or "tls://host:port" (syslog over TLS, RFC 5425;
	// needs the tls block). "udp4", "udp6", "tcp4", "tcp6", "tls4" and
	// "tls6" pin the IP version. Port 0 picks a free port (see
	// Input.Addrs). At least one is required.
	Listen []string `hcl:"listen"`
	// Stream is the stream type given to every event. Default "syslog".
	Stream string `hcl:"stream,optional"`
	// Format selects the parser: "auto" (default; RFC 5424 or RFC 3164 per
	// message), "rfc5424", "rfc3164", or "raw" (no parsing: Message is the
	// whole frame, Facility and Severity -1, Host the peer IP).
	Format string `hcl:"format,optional"`
	// MaxMessageBytes is the longest frame accepted, without framing.
	// Longer TCP frames and UDP datagrams are dropped (reason "oversize").
	// Default 65536, at most 16 MiB.
	MaxMessageBytes int `hcl:"max_message_bytes,optional"`
	// IdleTimeout closes a TCP or TLS connection that sent nothing for
	// this long. Default "5m"; "0" disables it. A TLS handshake must
	// complete within 10s, or within idle_timeout if that is shorter.
	IdleTimeout string `hcl:"idle_timeout,optional"`
	// MaxConnections bounds the open TCP and TLS connections of this
	// input (all its TCP and TLS listeners together, connections still in
	// their TLS handshake included). Connections beyond it are accepted and
	// closed at once (dropped, reason "max_connections"). Default 1024.
	MaxConnections int `hcl:"max_connections,optional"`
	// UDPReadBuffer is the socket receive buffer requested for each UDP
	// socket (SO_RCVBUFFORCE when permitted, else SO_RCVBUF, which the
	// kernel caps at net.core.rmem_max). Default "32MiB"; "0" keeps the
	// system default.
	UDPReadBuffer string `hcl:"udp_read_buffer,optional"`
	// UDPReaders is the number of sockets (SO_REUSEPORT) and reading
	// goroutines per UDP address. Default 2, at most 64.
	UDPReaders int `hcl:"udp_readers,optional"`
	// Timezone is the zone of RFC 3164 timestamps, which carry none:
	// "Local" (default), "UTC" or an IANA name such as "Europe/Paris".
	Timezone string `hcl:"timezone,optional"`
	// TLS is the `tls` block of the tls:// listeners: cert_file, key_file,
	// client_ca_file, client_auth ("none", "request", "require") and
	// min_version ("1.2", "1.3"); see tlsconf.Server. It is required by a
	// tls:// address and an error without one.
	TLS *tlsconf.Server `hcl:"tls,block"`
}

// DefaultConfig returns a Config with every default set. Listen is empty:
// the block must set it.
func DefaultConfig() *Config {
	return &Config{
		Stream:          "syslog",
		Format:          "auto",
		MaxMessageBytes: 65536,
		IdleTimeout:     "5m",
		MaxConnections:  1024,
		UDPReadBuffer:   "32MiB",
		UDPReaders:      2,
		Timezone:        "Local",
	}
}

// listenAddr is one parsed entry of Config.Listen.
type listenAddr struct {
	spec    string // as written, for messages
	network string // "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6" (tls:// listeners: tcp*)
	address string // "host:port"
	tls     bool   // a tls:// listener (network is then tcp, tcp4 or tcp6)
}

func (l listenAddr) isUDP() bool { return strings.HasPrefix(l.network, "udp") }

// settings is the validated, converted form of Config.
type settings struct {
	listen      []listenAddr
	stream      string
	format      string
	maxMsg      int
	idle        time.Duration
	maxConns    int
	udpBuf      int
	udpReaders  int
	loc         *time.Location
	tls         *tls.Config   // the tls:// listeners' config; nil without a tls block
	handshake   time.Duration // TLS handshake timeout
	maxBatch    int           // events per Emit
	maxBatchRaw int           // raw bytes per Emit (soft)
}

func parseListen(s string) (listenAddr, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return listenAddr{}, fmt.Errorf("invalid listen address %q (want \"udp://host:port\", \"tcp://host:port\" or \"tls://host:port\")", s)
	}
	network, isTLS := scheme, false
	switch scheme {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	case "tls", "tls4", "tls6":
		network, isTLS = "tcp"+strings.TrimPrefix(scheme, "tls"), true
	default:
		return listenAddr{}, fmt.Errorf("invalid listen address %q: unknown scheme %q (want udp, tcp or tls)", s, scheme)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return listenAddr{}, fmt.Errorf("invalid listen address %q: %w", s, err)
	}
	if strings.ContainsAny(host, "/?#@") {
		return listenAddr{}, fmt.Errorf("invalid listen address %q: bad host %q", s, host)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return listenAddr{}, fmt.Errorf("invalid listen address %q: port %q is not a number from 0 to 65535", s, port)
	}
	return listenAddr{spec: s, network: network, address: net.JoinHostPort(host, strconv.Itoa(p)), tls: isTLS}, nil
}

// validate converts cfg into settings, reporting every bad attribute as a
// *conf.FieldError (joined). It reads the files of the tls block;
// onReloadError (may be nil) is called when a renewed server certificate
// fails to load.
func validate(cfg *Config, onReloadError func(error)) (*settings, error) {
	if cfg == nil {
		return nil, errors.New("syslog: nil config")
	}
	var errs []error
	s := &settings{
		stream:      cfg.Stream,
		format:      cfg.Format,
		maxMsg:      cfg.MaxMessageBytes,
		maxConns:    cfg.MaxConnections,
		udpReaders:  cfg.UDPReaders,
		maxBatch:    256,
		maxBatchRaw: 1 << 20,
	}
	if len(cfg.Listen) == 0 {
		errs = append(errs, conf.Field("listen", errors.New("at least one address is required")))
	}
	seen := make(map[string]string) // network and address → spec
	tlsListeners := 0
	for _, l := range cfg.Listen {
		la, err := parseListen(l)
		if err != nil {
			errs = append(errs, conf.Field("listen", err))
			continue
		}
		if la.tls {
			tlsListeners++
			if cfg.TLS == nil {
				errs = append(errs, conf.Field("listen", fmt.Errorf("address %q needs a tls block (with cert_file and key_file)", l)))
			}
		}
		if _, port, _ := net.SplitHostPort(la.address); port != "0" {
			key := la.network + " " + la.address
			if prev, dup := seen[key]; dup {
				if prev == l {
					errs = append(errs, conf.Field("listen", fmt.Errorf("address %q listed twice", l)))
				} else {
					errs = append(errs, conf.Field("listen", fmt.Errorf("address %q uses the same TCP port as %q", l, prev)))
				}
				continue
			}
			seen[key] = l
		}
		s.listen = append(s.listen, la)
	}
	if cfg.TLS != nil {
		if tlsListeners == 0 && len(cfg.Listen) > 0 {
			errs = append(errs, conf.Field("tls", errors.New("a tls block needs at least one tls:// listen address (tcp:// listeners do not use it)")))
		}
		tc, terrs := cfg.TLS.Build("tls.", onReloadError)
		errs = append(errs, terrs...)
		s.tls = tc
	}
	if s.stream == "" {
		errs = append(errs, conf.Field("stream", errors.New("must not be empty")))
	}
	switch s.format {
	case "auto", "rfc5424", "rfc3164", "raw":
	default:
		errs = append(errs, conf.Field("format", fmt.Errorf("unknown format %q (want \"auto\", \"rfc5424\", \"rfc3164\" or \"raw\")", s.format)))
	}
	if s.maxMsg < 1 || s.maxMsg > MaxMessageBytesLimit {
		errs = append(errs, conf.Field("max_message_bytes", fmt.Errorf("%d is out of range (want 1 to %d)", s.maxMsg, MaxMessageBytesLimit)))
	}
	if d, err := conf.ParseDuration(cfg.IdleTimeout); err != nil {
		errs = append(errs, conf.Field("idle_timeout", err))
	} else {
		s.idle = d
	}
	s.handshake = maxHandshakeTimeout
	if s.idle > 0 && s.idle < s.handshake {
		s.handshake = s.idle
	}
	if s.maxConns < 1 {
		errs = append(errs, conf.Field("max_connections", fmt.Errorf("%d is out of range (want at least 1)", s.maxConns)))
	}
	if n, err := conf.ParseSize(cfg.UDPReadBuffer); err != nil {
		errs = append(errs, conf.Field("udp_read_buffer", err))
	} else if n > maxUDPReadBuffer {
		errs = append(errs, conf.Field("udp_read_buffer", fmt.Errorf("%q is too large (at most 1GiB)", cfg.UDPReadBuffer)))
	} else {
		s.udpBuf = int(n)
	}
	if s.udpReaders < 1 || s.udpReaders > maxUDPReaders {
		errs = append(errs, conf.Field("udp_readers", fmt.Errorf("%d is out of range (want 1 to %d)", s.udpReaders, maxUDPReaders)))
	}
	switch cfg.Timezone {
	case "Local", "local":
		s.loc = time.Local
	case "UTC", "utc":
		s.loc = time.UTC
	case "":
		errs = append(errs, conf.Field("timezone", errors.New("must not be empty (use \"Local\" or \"UTC\")")))
	default:
		loc, err := time.LoadLocation(cfg.Timezone)
		if err != nil {
			errs = append(errs, conf.Field("timezone", fmt.Errorf("unknown time zone %q: %w", cfg.Timezone, err)))
		}
		s.loc = loc
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}
