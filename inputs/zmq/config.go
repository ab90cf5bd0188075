package zmq

import (
	"errors"
	"fmt"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/internal/zmqsock"
)

// Limits of the configuration values.
const (
	// MaxMessageBytesLimit is the largest accepted max_message_bytes (16 MiB).
	MaxMessageBytesLimit = 16 << 20
	maxReceiveHWM        = 1_000_000
)

// Config is the body of an `input "zmq" "NAME" { ... }` block.
type Config struct {
	// Socket is "pull" (default) or "sub".
	Socket string `hcl:"socket,optional"`
	// Bind lists endpoints to listen on, Connect endpoints to connect to:
	// one endpoint as a string or several as a list ("tcp://HOST:PORT",
	// "ipc://PATH"). Exactly one of the two must be set.
	Bind    cty.Value `hcl:"bind,optional"`
	Connect cty.Value `hcl:"connect,optional"`
	// Topics are the SUB subscriptions, topic prefixes matched against a
	// message's first frame; empty subscribes to everything. SUB only.
	Topics []string `hcl:"topics,optional"`
	// Format of the payload: "raw" (default: the payload is the message,
	// facility and severity unknown, host and origin the peer's IP),
	// "json" (an object of Sluice's json format, decoded back into the
	// event it was made from; anything else is kept as raw and counted
	// as a parse failure), or "auto", "rfc5424", "rfc3164" (parsed as the
	// syslog input parses a frame; RFC 3164 stamps in local time).
	Format string `hcl:"format,optional"`
	// Stream is the stream type of raw events, and of json events that
	// carry none. Default "zmq".
	Stream string `hcl:"stream,optional"`
	// MaxMessageBytes is ZMQ_MAXMSGSIZE: libzmq disconnects a peer that
	// sends a larger frame, before allocating it. Default 65536, at most
	// 16 MiB. A size: 65536 or "64KiB".
	MaxMessageBytes string `hcl:"max_message_bytes,optional"`
	// ReceiveHWM is ZMQ_RCVHWM: messages libzmq queues per peer before it
	// stops reading that peer's connection. Default 1000.
	ReceiveHWM int `hcl:"receive_hwm,optional"`
	// Heartbeat is the ZMTP heartbeat interval: a peer silent for three
	// intervals is disconnected (a connect-side socket then reconnects).
	// Default "10s"; "0" disables heartbeats.
	Heartbeat string `hcl:"heartbeat,optional"`
	// Curve enables CURVE encryption and authentication.
	Curve *zmqsock.CurveConfig `hcl:"curve,block"`
}

// DefaultConfig returns a Config with every default set. Bind and Connect
// are empty: the block must set one.
func DefaultConfig() *Config {
	return &Config{
		Socket:          "pull",
		Format:          "raw",
		Stream:          "zmq",
		MaxMessageBytes: "65536",
		ReceiveHWM:      1000,
		Heartbeat:       "10s",
	}
}

// settings is the validated form of Config.
type settings struct {
	sub       bool
	bind      []string
	connect   []string
	topics    []string
	json      bool
	syslog    string // "auto", "rfc5424", "rfc3164": parse payloads as syslog
	stream    string
	maxMsg    int64
	rcvHWM    int
	heartbeat time.Duration
	curve     *zmqsock.Curve
	warnings  []string
}

// validate converts cfg, reporting every bad attribute as a
// *conf.FieldError (joined).
func validate(cfg *Config) (*settings, error) {
	if cfg == nil {
		return nil, errors.New("zmq input: nil config")
	}
	var errs []error
	add := func(field string, err error) { errs = append(errs, conf.Field(field, err)) }
	s := &settings{stream: cfg.Stream, rcvHWM: cfg.ReceiveHWM, topics: cfg.Topics}

	switch cfg.Socket {
	case "pull":
	case "sub":
		s.sub = true
	case "push", "pub":
		add("socket", fmt.Errorf("%q is a sending socket; a zmq input receives: use \"pull\" (for PUSH senders) or \"sub\" (for PUB senders), or declare an output \"zmq\"", cfg.Socket))
	default:
		add("socket", fmt.Errorf("unknown socket type %q (want \"pull\" or \"sub\")", cfg.Socket))
	}

	bind, berr := zmqsock.EndpointList(cfg.Bind)
	if berr != nil {
		add("bind", berr)
	}
	connect, cerr := zmqsock.EndpointList(cfg.Connect)
	if cerr != nil {
		add("connect", cerr)
	}
	s.bind, s.connect = bind, connect
	if berr == nil && cerr == nil {
		errs = append(errs, zmqsock.ValidateBindConnect(bind, connect)...)
	}

	if len(cfg.Topics) > 0 && !s.sub {
		add("topics", fmt.Errorf("topics apply to socket = \"sub\" only; this input's socket is %q", cfg.Socket))
	}
	if s.sub && len(s.topics) == 0 {
		s.topics = []string{""}
	}

	switch cfg.Format {
	case "raw":
	case "json":
		s.json = true
	case "auto", "rfc5424", "rfc3164":
		s.syslog = cfg.Format
	default:
		add("format", fmt.Errorf("unknown format %q (want \"raw\", \"json\", \"auto\", \"rfc5424\" or \"rfc3164\")", cfg.Format))
	}
	if s.stream == "" {
		add("stream", errors.New("must not be empty"))
	}
	if n, err := conf.ParseSize(cfg.MaxMessageBytes); err != nil {
		add("max_message_bytes", err)
	} else if n < 1 || n > MaxMessageBytesLimit {
		add("max_message_bytes", fmt.Errorf("%q is out of range (want 1 byte to 16MiB)", cfg.MaxMessageBytes))
	} else {
		s.maxMsg = n
	}
	if s.rcvHWM < 1 || s.rcvHWM > maxReceiveHWM {
		add("receive_hwm", fmt.Errorf("%d is out of range (want 1 to %d messages)", cfg.ReceiveHWM, maxReceiveHWM))
	}
	if d, err := conf.ParseDuration(cfg.Heartbeat); err != nil {
		add("heartbeat", err)
	} else if d > 0 && d < time.Millisecond {
		add("heartbeat", fmt.Errorf("%q is below libzmq's resolution of 1ms (use \"0\" to disable heartbeats)", cfg.Heartbeat))
	} else {
		s.heartbeat = d
	}
	if cfg.Curve != nil {
		cv, warns, cerrs := zmqsock.ParseCurve(cfg.Curve, len(s.bind) > 0)
		errs = append(errs, cerrs...)
		s.curve, s.warnings = cv, warns
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}
