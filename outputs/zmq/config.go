package zmq

import (
	"errors"
	"fmt"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/internal/zmqsock"
	"github.com/sluicelog/sluice/outputs/format"
)

// Limits of the configuration.
const (
	maxSendHWM = 1_000_000
	maxLinger  = 10 * time.Minute
)

// Config is the body of an `output "zmq" "NAME" { ... }` block.
type Config struct {
	// Socket is "push" (default) or "pub".
	Socket string `hcl:"socket,optional"`
	// Bind lists endpoints to listen on, Connect endpoints to connect to:
	// one endpoint as a string or several as a list ("tcp://HOST:PORT",
	// "ipc://PATH"). Exactly one of the two must be set.
	Bind    cty.Value `hcl:"bind,optional"`
	Connect cty.Value `hcl:"connect,optional"`
	// Format of each message: "raw" (default), "rfc5424" or "json" (see
	// package outputs/format).
	Format string `hcl:"format,optional"`
	// Topic is the first frame of every PUB message: literal text with
	// {stream}, {input}, {origin}, {host}, {app}, {procid}, {msgid},
	// {facility} and {severity} replaced by the event's fields. PUB only;
	// default "{stream}".
	Topic *string `hcl:"topic,optional"`
	// SendHWM is ZMQ_SNDHWM: messages libzmq queues per peer. Default 1000.
	SendHWM int `hcl:"send_hwm,optional"`
	// SendTimeout is how long a PUSH send may wait for a peer with room
	// before Write fails (the router retries; events stay queued).
	// Default "5s". PUB never waits.
	SendTimeout string `hcl:"send_timeout,optional"`
	// Linger is how long closing the socket at shutdown lets libzmq
	// deliver messages it still queues. Default "5s".
	Linger string `hcl:"linger,optional"`
	// Heartbeat is the ZMTP heartbeat interval: a peer silent for three
	// intervals is disconnected (and reconnected, on the connect side).
	// Default "10s"; "0" disables heartbeats.
	Heartbeat string `hcl:"heartbeat,optional"`
	// Curve enables CURVE encryption and authentication.
	Curve *zmqsock.CurveConfig `hcl:"curve,block"`
}

// DefaultConfig returns a Config with every default set. Bind and Connect
// are empty: the block must set one.
func DefaultConfig() *Config {
	return &Config{
		Socket:      "push",
		Format:      "raw",
		SendHWM:     1000,
		SendTimeout: "5s",
		Linger:      "5s",
		Heartbeat:   "10s",
	}
}

// settings is the validated form of Config.
type settings struct {
	pub         bool
	bind        []string
	connect     []string
	format      format.Format
	topic       format.Template
	sendHWM     int
	sendTimeout time.Duration
	linger      time.Duration
	heartbeat   time.Duration
	curve       *zmqsock.Curve
	warnings    []string
}

// validate converts cfg; errors are *conf.FieldError values, joined.
func validate(cfg *Config) (*settings, error) {
	if cfg == nil {
		return nil, errors.New("zmq output: nil config")
	}
	var errs []error
	add := func(field string, err error) { errs = append(errs, conf.Field(field, err)) }
	s := &settings{sendHWM: cfg.SendHWM}

	switch cfg.Socket {
	case "push":
	case "pub":
		s.pub = true
	case "pull", "sub":
		add("socket", fmt.Errorf("%q is a receiving socket; a zmq output sends: use \"push\" (for PULL receivers) or \"pub\" (for SUB receivers), or declare an input \"zmq\"", cfg.Socket))
	default:
		add("socket", fmt.Errorf("unknown socket type %q (want \"push\" or \"pub\")", cfg.Socket))
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

	f, err := format.Parse(cfg.Format)
	if err != nil {
		add("format", err)
	}
	s.format = f

	switch {
	case cfg.Topic != nil && cfg.Socket != "pub":
		add("topic", fmt.Errorf("topic applies to socket = \"pub\" only; this output's socket is %q", cfg.Socket))
	case s.pub:
		src := "{stream}"
		if cfg.Topic != nil {
			src = *cfg.Topic
		}
		t, err := format.CompileTemplate(src)
		if err != nil {
			add("topic", err)
		}
		s.topic = t
	}

	if s.sendHWM < 1 || s.sendHWM > maxSendHWM {
		add("send_hwm", fmt.Errorf("%d is out of range (want 1 to %d messages)", cfg.SendHWM, maxSendHWM))
	}
	if d, err := conf.ParseDuration(cfg.SendTimeout); err != nil {
		add("send_timeout", err)
	} else if d < time.Millisecond {
		add("send_timeout", fmt.Errorf("%q is too short (at least \"1ms\")", cfg.SendTimeout))
	} else {
		s.sendTimeout = d
	}
	if d, err := conf.ParseDuration(cfg.Linger); err != nil {
		add("linger", err)
	} else if d > maxLinger {
		add("linger", fmt.Errorf("%q is more than %s", cfg.Linger, maxLinger))
	} else {
		s.linger = d
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
