package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
)

// The fwd scenario: TCP syslog → daemon → syslog forwarding over TCP,
// octet-counted, each message as received (Sluice's syslog output with
// format "raw"; rsyslog's omfwd with a %rawmsg% template) → a TCP receiver
// in this process that parses the frames and counts messages. Time ends
// when the receiver has counted N messages. This is the path a syslog-ng
// or rsyslog forwarder replaced by Sluice runs.

// frameSink accepts TCP connections and counts octet-counted frames.
type frameSink struct {
	ln            net.Listener
	count, nbytes atomic.Int64
	bad           atomic.Int64 // connections that ended on a malformed frame
	wg            sync.WaitGroup
	mu            sync.Mutex
	conns         []net.Conn
}

func startFrameSink() (*frameSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	k := &frameSink{ln: ln}
	k.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			k.mu.Lock()
			k.conns = append(k.conns, c)
			k.mu.Unlock()
			k.wg.Go(func() { k.serve(c) })
		}
	})
	return k, nil
}

func (k *frameSink) port() int { return k.ln.Addr().(*net.TCPAddr).Port }

// serve reads "LEN SP MSG" frames until the connection ends.
func (k *frameSink) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 1<<20)
	for {
		head, err := r.ReadSlice(' ')
		if err != nil {
			if !errors.Is(err, io.EOF) || len(head) > 0 {
				k.bad.Add(1)
			}
			return
		}
		n, err := strconv.Atoi(string(bytes.TrimSpace(head[:len(head)-1])))
		if err != nil || n < 0 {
			k.bad.Add(1)
			return
		}
		if _, err := r.Discard(n); err != nil {
			k.bad.Add(1)
			return
		}
		k.count.Add(1)
		k.nbytes.Add(int64(n))
	}
}

func (k *frameSink) close() {
	k.ln.Close()
	k.mu.Lock()
	for _, c := range k.conns {
		c.Close()
	}
	k.mu.Unlock()
	k.wg.Wait()
}

// runRsyslogFwd runs the fwd scenario against rsyslog: imptcp → omfwd TCP
// octet-counted with the raw message.
func runRsyslogFwd(rsyslogd string, payload []byte, n int) (result, error) {
	dir, err := os.MkdirTemp("", "rsyslog-bench")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	sink, err := startFrameSink()
	if err != nil {
		return result{}, err
	}
	defer sink.close()
	port, _ := freePort()
	conf := fmt.Sprintf(`
global(workDirectory=%q)
main_queue(queue.timeoutShutdown="600000" queue.size="200000")
module(load="imptcp")
template(name="raw" type="string" string="%%rawmsg%%")
ruleset(name="bench") {
  action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp" TCP_Framing="octet-counted" template="raw")
}
input(type="imptcp" address="127.0.0.1" port="%d" ruleset="bench")
`, dir, sink.port(), port)
	res, err := timeRsyslog(rsyslogd, dir, conf, tcpDialer(port), payload, func() bool { return sink.count.Load() >= int64(n) })
	if err != nil {
		return result{}, err
	}
	if got, bad := sink.count.Load(), sink.bad.Load(); got != int64(n) || bad != 0 {
		return result{}, fmt.Errorf("receiver counted %d messages (%d malformed connections) from rsyslog; want %d", got, bad, n)
	}
	return res, nil
}
