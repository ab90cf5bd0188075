package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	zmq4 "github.com/pebbe/zmq4"

	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/internal/zmqsock"
	"github.com/sluicelog/sluice/outputs/format"
	"github.com/sluicelog/sluice/router"
	"github.com/sluicelog/sluice/router/event"
	"github.com/sluicelog/sluice/rules"
)

const tapUsage = `usage: sluice tap -connect ENDPOINT [flags]

Connects a SUB socket to a zmq output with socket = "pub" and prints its
events, one per line, until interrupted (Ctrl-C), -n events were printed or
-timeout passed. The pipeline is not affected: a PUB never waits for its
subscribers, and one that reads too slowly loses messages (see docs/zmq.md).

flags:
  -connect ENDPOINT   PUB endpoint, e.g. tcp://127.0.0.1:5558 (repeatable)
  -topic PREFIX       subscribe to topics starting with PREFIX (repeatable;
                      default: every topic). The output's topic defaults to {stream}.
  -when EXPR          print only events matching a route condition, e.g.
                      -when 'severity <= "err" && host != "noisy"'
  -decode MODE        auto (default: JSON objects of Sluice's json format are
                      decoded, anything else is a raw message), json or raw
  -format FORMAT      how to print: raw (default), json or rfc5424
  -n N                exit after printing N events (0: no limit)
  -timeout DURATION   exit after this long (status 1 if -n was not reached)
  -server-key KEY     the PUB's CURVE public key (or -server-key-file FILE)
  -secret-key-file F  this tap's CURVE secret key, if the output authorizes
                      clients (default: a new keypair each run)
  -max-message-bytes SIZE
                      largest frame accepted (default 16MiB)

Exit status: 0 when stopped by a signal, -n or -timeout without -n; 1 on an
error or when -timeout passed before -n events; 2 on a usage error.
`

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// tapOptions are the parsed flags of `sluice tap`.
type tapOptions struct {
	connect, topics repeated
	when            string
	decode          string
	print           format.Format
	n               int
	timeout         time.Duration
	curve           *zmqsock.Curve
	maxMsg          int64
}

// cmdTap implements `sluice tap`.
func cmdTap(args []string, stdout, stderr io.Writer) int {
	o, pred, code := parseTap(args, stderr)
	if code >= 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	return runTap(ctx, o, pred, stdout, stderr)
}

// parseTap parses the flags; code is -1 when tap should run.
func parseTap(args []string, stderr io.Writer) (o tapOptions, pred rules.Predicate, code int) {
	fs := flag.NewFlagSet("tap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, tapUsage) }
	fs.Var(&o.connect, "connect", "")
	fs.Var(&o.topics, "topic", "")
	fs.StringVar(&o.when, "when", "", "")
	fs.StringVar(&o.decode, "decode", "auto", "")
	printFormat := fs.String("format", "raw", "")
	fs.IntVar(&o.n, "n", 0, "")
	fs.DurationVar(&o.timeout, "timeout", 0, "")
	serverKey := fs.String("server-key", "", "")
	serverKeyFile := fs.String("server-key-file", "", "")
	secretKeyFile := fs.String("secret-key-file", "", "")
	maxMsg := fs.String("max-message-bytes", "16MiB", "")
	if err := fs.Parse(args); err != nil {
		return o, nil, 2
	}
	usageErr := func(format string, a ...any) (tapOptions, rules.Predicate, int) {
		fmt.Fprintf(stderr, "sluice tap: "+format+"\n", a...)
		return o, nil, 2
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if len(o.connect) == 0 {
		return usageErr("-connect is required (the endpoint of a zmq output with socket = \"pub\")")
	}
	if errs := zmqsock.ValidateEndpoints(o.connect, false); len(errs) > 0 {
		return usageErr("-connect: %v", errs[0])
	}
	switch o.decode {
	case "auto", "json", "raw":
	default:
		return usageErr("-decode: unknown mode %q (want auto, json or raw)", o.decode)
	}
	f, err := format.Parse(*printFormat)
	if err != nil {
		return usageErr("-format: %v", err)
	}
	o.print = f
	if o.n < 0 || o.timeout < 0 {
		return usageErr("-n and -timeout must not be negative")
	}
	n, err := conf.ParseSize(*maxMsg)
	if err != nil || n < 1 {
		return usageErr("-max-message-bytes: invalid size %q", *maxMsg)
	}
	o.maxMsg = n
	if *serverKey != "" || *serverKeyFile != "" || *secretKeyFile != "" {
		cv, _, errs := zmqsock.ParseCurve(&zmqsock.CurveConfig{
			ServerKey: *serverKey, ServerKeyFile: *serverKeyFile, SecretKeyFile: *secretKeyFile,
		}, false)
		if len(errs) > 0 {
			for _, err := range errs {
				var fe *conf.FieldError
				if errors.As(err, &fe) {
					flagName := "-" + strings.ReplaceAll(strings.TrimPrefix(fe.Field, "curve."), "_", "-")
					fmt.Fprintf(stderr, "sluice tap: %s: %v\n", flagName, fe.Err)
				} else {
					fmt.Fprintf(stderr, "sluice tap: %v\n", err)
				}
			}
			return o, nil, 2
		}
		o.curve = cv
	}
	if len(o.topics) == 0 {
		o.topics = repeated{""}
	}
	if o.when != "" {
		src := []byte(o.when)
		expr, diags := hclsyntax.ParseExpression(src, "-when", hcl.InitialPos)
		if !diags.HasErrors() {
			var cd hcl.Diagnostics
			pred, cd = rules.Compile(expr)
			diags = append(diags, cd...)
		}
		if diags.HasErrors() {
			_ = router.WriteDiagnostics(stderr, map[string][]byte{"-when": src}, diags)
			return o, nil, 2
		}
	}
	return o, pred, -1
}

// runTap receives and prints until ctx ends or o.n events were printed.
func runTap(ctx context.Context, o tapOptions, pred rules.Predicate, stdout, stderr io.Writer) int {
	sock, err := zmqsock.Open(zmqsock.Options{
		Type:        zmq4.SUB,
		Connect:     o.connect,
		Curve:       o.curve,
		MaxMsgSize:  o.maxMsg,
		RecvHWM:     10000,
		RecvTimeout: 100 * time.Millisecond,
		Subscribe:   o.topics,
		Events: func(e zmqsock.PeerEvent) {
			if e.Kind == zmqsock.PeerRejected {
				fmt.Fprintf(stderr, "sluice tap: %s: %s\n", e.Endpoint, e.Reason)
			}
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "sluice tap: %v\n", err)
		return 1
	}
	defer sock.Close()
	w := bufio.NewWriterSize(stdout, 64<<10)
	defer w.Flush()
	var (
		buf                    []byte
		received, printed, bad int
		pending                bool // unflushed output
		reachedN               bool
	)
	for ctx.Err() == nil && !reachedN {
		flags := zmq4.Flag(0)
		if pending {
			flags = zmq4.DONTWAIT
		}
		frames, err := sock.Z.RecvMessageBytes(flags)
		if err != nil {
			if zmqsock.IsAgain(err) {
				if pending {
					if err := w.Flush(); err != nil {
						fmt.Fprintf(stderr, "sluice tap: %v\n", err)
						return 1
					}
					pending = false
				}
				continue
			}
			fmt.Fprintf(stderr, "sluice tap: receive: %v\n", err)
			return 1
		}
		received++
		ev, ok := tapDecode(frames[len(frames)-1], o.decode)
		if !ok {
			if bad++; bad == 1 {
				fmt.Fprintln(stderr, "sluice tap: a message is not a JSON event (-decode json); skipping such messages")
			}
			continue
		}
		if pred != nil && !pred(ev) {
			continue
		}
		buf = append(o.print.Append(buf[:0], ev), '\n')
		if _, err := w.Write(buf); err != nil {
			fmt.Fprintf(stderr, "sluice tap: %v\n", err)
			return 1
		}
		pending = true
		printed++
		reachedN = o.n > 0 && printed >= o.n
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(stderr, "sluice tap: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "sluice tap: printed %d of %d events received\n", printed, received)
	if o.n > 0 && !reachedN && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		fmt.Fprintf(stderr, "sluice tap: -timeout %s passed before %d events\n", o.timeout, o.n)
		return 1
	}
	return 0
}

// tapDecode turns a payload into an event: a JSON object of Sluice's json
// format (modes json and auto), or a raw message (modes raw and auto).
func tapDecode(payload []byte, mode string) (*event.Event, bool) {
	if mode != "raw" && len(payload) > 0 && payload[0] == '{' {
		if ev, err := format.DecodeJSON(payload); err == nil {
			return ev, true
		}
	}
	if mode == "json" {
		return nil, false
	}
	return &event.Event{Message: string(payload), Raw: payload, Facility: -1, Severity: -1}, true
}
