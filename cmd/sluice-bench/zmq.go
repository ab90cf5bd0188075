package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	zmq4 "github.com/pebbe/zmq4"
)

// The zmq scenario: TCP syslog → daemon → ZeroMQ PUSH (raw format, one
// message per event) → a libzmq PULL sink in this process that counts
// messages. Time ends when the sink has counted N messages, for Sluice and
// for rsyslog (imptcp → omczmq, when rsyslog's omczmq module is installed:
// Debian package rsyslog-czmq).

// zmqSink is a PULL socket bound on loopback that counts what it receives,
// on a goroutine of its own (which owns the socket).
type zmqSink struct {
	endpoint      string
	count, nbytes atomic.Int64
	stop          chan struct{}
	done          chan struct{}
}

func startZMQSink() (*zmqSink, error) {
	ctx, err := zmq4.NewContext()
	if err != nil {
		return nil, err
	}
	s, err := ctx.NewSocket(zmq4.PULL)
	if err == nil {
		err = s.SetRcvhwm(10000)
	}
	if err == nil {
		err = s.SetRcvtimeo(100 * time.Millisecond)
	}
	if err == nil {
		err = s.Bind("tcp://127.0.0.1:*")
	}
	var ep string
	if err == nil {
		ep, err = s.GetLastEndpoint()
	}
	if err != nil {
		s.Close()
		ctx.Term()
		return nil, fmt.Errorf("zmq sink: %w", err)
	}
	k := &zmqSink{endpoint: ep, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(k.done)
		defer ctx.Term()
		defer s.Close()
		for {
			select {
			case <-k.stop:
				return
			default:
			}
			b, err := s.RecvBytes(0)
			if err != nil {
				continue // EAGAIN: a 100ms tick without messages
			}
			k.count.Add(1)
			k.nbytes.Add(int64(len(b)))
		}
	}()
	return k, nil
}

// close stops the goroutine, which closes the socket and its context.
func (k *zmqSink) close() {
	close(k.stop)
	<-k.done
}

// omczmqAvailable reports whether rsyslog's omczmq output module is
// installed.
func omczmqAvailable() bool {
	for _, pattern := range []string{"/usr/lib/*/rsyslog/omczmq.so", "/usr/lib/rsyslog/omczmq.so", "/usr/lib64/rsyslog/omczmq.so"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return true
		}
	}
	return false
}

// runRsyslogZMQ runs the zmq scenario against rsyslog: imptcp → omczmq
// PUSH (connecting to the sink), raw message, send HWM 1000 as Sluice's
// default.
func runRsyslogZMQ(rsyslogd string, payload []byte, n int) (result, error) {
	dir, err := os.MkdirTemp("", "rsyslog-bench")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	sink, err := startZMQSink()
	if err != nil {
		return result{}, err
	}
	defer sink.close()
	port, _ := freePort()
	conf := fmt.Sprintf(`
global(workDirectory=%q)
main_queue(queue.timeoutShutdown="600000" queue.size="200000")
module(load="imptcp")
module(load="omczmq")
template(name="raw" type="string" string="%%rawmsg%%")
ruleset(name="bench") {
  action(type="omczmq" endpoints=">%s" socktype="PUSH" template="raw" sendhwm="1000")
}
input(type="imptcp" address="127.0.0.1" port="%d" ruleset="bench")
`, dir, sink.endpoint, port)
	res, err := timeRsyslog(rsyslogd, dir, conf, tcpDialer(port), payload, func() bool { return sink.count.Load() >= int64(n) })
	if err != nil {
		return result{}, err
	}
	if got := sink.count.Load(); got != int64(n) {
		return result{}, fmt.Errorf("zmq sink received %d messages from rsyslog; want %d", got, n)
	}
	return res, nil
}
