package zmq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	zmq4 "github.com/pebbe/zmq4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/zclconf/go-cty/cty"

	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/internal/zmqsock"
	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/outputs/format"
	"github.com/sluicelog/sluice/router/event"
)

func freeEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "tcp://" + l.Addr().String()
}

// peer is a libzmq socket in a context of its own.
type peer struct {
	ctx *zmq4.Context
	*zmq4.Socket
	closed bool
}

func newPeer(t *testing.T, typ zmq4.Type) *peer {
	t.Helper()
	ctx, err := zmq4.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ctx.NewSocket(typ)
	if err != nil {
		t.Fatal(err)
	}
	s.SetLinger(0)
	s.SetRcvtimeo(20 * time.Second)
	p := &peer{ctx: ctx, Socket: s}
	t.Cleanup(p.close)
	return p
}

func (p *peer) close() {
	if !p.closed {
		p.closed = true
		p.Socket.Close()
		p.ctx.Term()
	}
}

// recvN receives n single-frame messages (20s per message at most).
func (p *peer) recvN(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		b, err := p.RecvBytes(0)
		if err != nil {
			t.Fatalf("after %d messages: %v", len(out), err)
		}
		out = append(out, string(b))
	}
	return out
}

func openOutput(t *testing.T, cfg *Config) *Output {
	t.Helper()
	o, err := New(cfg, outputs.Env{Name: "zout"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	out := o.(*Output)
	if err := out.Open(context.Background()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { out.Close() })
	return out
}

func events(from, n int) []*event.Event {
	evs := make([]*event.Event, n)
	for i := range evs {
		msg := fmt.Sprintf("event %06d", from+i)
		evs[i] = &event.Event{Stream: []string{"alpha", "beta"}[(from+i)%2], Message: msg, Raw: []byte(msg), Facility: 1, Severity: 6}
	}
	return evs
}

func TestConfigErrors(t *testing.T) {
	_, sec, _ := zmqsock.NewKeypair()
	cases := []struct {
		name, src string
		want      map[string]string
	}{
		{"bad socket", `socket = "dealer"
connect = "tcp://h:1"`, map[string]string{"socket": `unknown socket type "dealer" (want "push" or "pub")`}},
		{"receiving socket", `socket = "pull"
connect = "tcp://h:1"`, map[string]string{"socket": `"pull" is a receiving socket`}},
		{"no endpoint", ``, map[string]string{"bind": "both are empty"}},
		{"topic on push", `connect = "tcp://h:1"
topic = "{stream}"`, map[string]string{"topic": `topic applies to socket = "pub" only`}},
		{"bad topic", `socket = "pub"
bind = "tcp://*:1"
topic = "{nope}"`, map[string]string{"topic": "unknown field {nope}"}},
		{"format", `connect = "tcp://h:1"
format = "xml"`, map[string]string{"format": `unknown format "xml"`}},
		{"hwm", `connect = "tcp://h:1"
send_hwm = 0`, map[string]string{"send_hwm": "0 is out of range"}},
		{"timeout", `connect = "tcp://h:1"
send_timeout = "0s"`, map[string]string{"send_timeout": "too short"}},
		{"linger", `connect = "tcp://h:1"
linger = "1h"`, map[string]string{"linger": "more than 10m0s"}},
		{"curve client key", `connect = "tcp://h:1"
curve {
  server_key = "abc"
}`, map[string]string{"curve.server_key": "a CURVE key is 40 Z85 characters (32 bytes), got 3 characters"}},
		{"curve server", `bind = "tcp://*:1"
curve {
  server_key = ` + zmqsock.HCLQuote(sec) + `
}`, map[string]string{"curve.server_key": "this socket binds", "curve.secret_key": "required"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, diags := hclsyntax.ParseConfig([]byte(c.src), "t.hcl", hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			cfg := DefaultConfig()
			if d := gohcl.DecodeBody(f.Body, nil, cfg); d.HasErrors() {
				t.Fatal(d)
			}
			_, err := New(cfg, outputs.Env{Name: "x"})
			if err == nil {
				t.Fatal("accepted")
			}
			got := map[string]string{}
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *conf.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("%v is not a FieldError", e)
				}
				got[fe.Field] += fe.Err.Error()
			}
			for f, want := range c.want {
				if !strings.Contains(got[f], want) {
					t.Errorf("%s: %q; want %q (all %v)", f, got[f], want, got)
				}
			}
			if len(got) != len(c.want) {
				t.Errorf("fields %v; want %v", got, c.want)
			}
		})
	}
}

// PUSH to two PULL peers: libzmq round-robins, each peer gets a share, and
// together they get every event exactly once.
func TestPushTwoPeers(t *testing.T) {
	ep1, ep2 := freeEndpoint(t), freeEndpoint(t)
	a, b := newPeer(t, zmq4.PULL), newPeer(t, zmq4.PULL)
	a.Bind(ep1)
	b.Bind(ep2)
	cfg := DefaultConfig()
	cfg.Connect = cty.TupleVal([]cty.Value{cty.StringVal(ep1), cty.StringVal(ep2)})
	out := openOutput(t, cfg)
	// Wait until both are connected, or round-robin has one peer only.
	waitFor(t, "two peers", func() bool { return testutil.ToFloat64(out.m.peers) == 2 })
	const n = 2000
	if err := out.Write(context.Background(), events(0, n)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	countA, countB := 0, 0
	for countA+countB < n {
		polled, err := pollBoth(a, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range polled {
			msg, err := s.RecvBytes(zmq4.DONTWAIT)
			if err != nil {
				continue
			}
			seen[string(msg)]++
			if s == a.Socket {
				countA++
			} else {
				countB++
			}
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct events; want %d", len(seen), n)
	}
	for m, k := range seen {
		if k != 1 {
			t.Fatalf("%q received %d times", m, k)
		}
	}
	if countA == 0 || countB == 0 {
		t.Fatalf("shares %d/%d: round-robin should give both peers events", countA, countB)
	}
	t.Logf("shares: %d / %d", countA, countB)
	if s := testutil.ToFloat64(out.m.sent); s != n {
		t.Errorf("sent metric %v; want %d", s, n)
	}
}

func pollBoth(a, b *peer) ([]*zmq4.Socket, error) {
	p := zmq4.NewPoller()
	p.Add(a.Socket, zmq4.POLLIN)
	p.Add(b.Socket, zmq4.POLLIN)
	polled, err := p.Poll(20 * time.Second)
	if err != nil {
		return nil, err
	}
	if len(polled) == 0 {
		return nil, errors.New("nothing received for 20s")
	}
	var out []*zmq4.Socket
	for _, x := range polled {
		out = append(out, x.Socket)
	}
	return out, nil
}

// With no peer, a Write fails after send_timeout having handed libzmq
// only what fits below send_hwm; the router's retry of the same batch
// sends the rest once the peer is there, so the peer gets every event
// exactly once, in order.
func TestPushTimeoutAndResume(t *testing.T) {
	ep := freeEndpoint(t)
	cfg := DefaultConfig()
	cfg.Connect = cty.StringVal(ep)
	cfg.SendHWM = 10
	cfg.SendTimeout = "300ms"
	out := openOutput(t, cfg)
	batch := events(0, 100)
	err := out.Write(context.Background(), batch)
	if err == nil || !strings.Contains(err.Error(), "within send_timeout") || !strings.Contains(err.Error(), "10 of the batch's 100 events sent") {
		t.Fatalf("Write without a peer = %v", err)
	}
	if n := testutil.ToFloat64(out.m.timeouts); n != 1 {
		t.Errorf("timeouts = %v", n)
	}
	pull := newPeer(t, zmq4.PULL)
	if err := pull.Bind(ep); err != nil {
		t.Fatal(err)
	}
	// The retry (same events) resumes at event 10.
	if err := out.Write(context.Background(), batch); err != nil {
		t.Fatalf("retry: %v", err)
	}
	// A new batch starts from its beginning.
	if err := out.Write(context.Background(), events(100, 5)); err != nil {
		t.Fatal(err)
	}
	got := pull.recvN(t, 105)
	for i, m := range got {
		if want := fmt.Sprintf("event %06d", i); m != want {
			t.Fatalf("message %d = %q; want %q", i, m, want)
		}
	}
	if b, err := pull.RecvBytes(zmq4.DONTWAIT); err == nil {
		t.Fatalf("extra message %q (a duplicate?)", b)
	}
}

// A cancelled ctx ends a blocked Write promptly with ctx.Err().
func TestPushWriteCancel(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Connect = cty.StringVal(freeEndpoint(t))
	cfg.SendHWM = 1
	cfg.SendTimeout = "1h"
	out := openOutput(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- out.Write(ctx, events(0, 10)) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Write = %v; want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Write ignored ctx")
	}
}

// A collector that restarts on the same endpoint gets traffic again
// without reopening the output (libzmq reconnects).
func TestPushReconnect(t *testing.T) {
	ep := freeEndpoint(t)
	cfg := DefaultConfig()
	cfg.Connect = cty.StringVal(ep)
	out := openOutput(t, cfg)
	first := newPeer(t, zmq4.PULL)
	first.Bind(ep)
	if err := out.Write(context.Background(), events(0, 10)); err != nil {
		t.Fatal(err)
	}
	first.recvN(t, 10)
	first.close()
	waitFor(t, "the disconnect", func() bool { return testutil.ToFloat64(out.m.peers) == 0 })
	second := newPeer(t, zmq4.PULL)
	if err := second.Bind(ep); err != nil {
		t.Fatal(err)
	}
	if err := out.Write(context.Background(), events(10, 10)); err != nil {
		t.Fatal(err)
	}
	got := second.recvN(t, 10)
	if got[0] != "event 000010" || got[9] != "event 000019" {
		t.Fatalf("after the restart: %q", got)
	}
}

// PUB: [topic, payload] with the topic template; subscribers filter by
// prefix; a subscriber that does not read loses messages at send_hwm,
// which Write never fails for and the output counts.
func TestPubTopicsAndDrops(t *testing.T) {
	ep := freeEndpoint(t)
	cfg := DefaultConfig()
	cfg.Socket = "pub"
	cfg.Bind = cty.StringVal(ep)
	cfg.Format = "json"
	topic := "{stream}.{severity}"
	cfg.Topic = &topic
	cfg.SendHWM = 20
	out := openOutput(t, cfg)

	sub := newPeer(t, zmq4.SUB)
	sub.SetSubscribe("beta.")
	sub.Connect(ep)
	// Slow joiner: publish until the subscription is in place.
	var first []string
	for i := 0; ; i++ {
		if i > 2000 {
			t.Fatal("subscription never took effect")
		}
		if err := out.Write(context.Background(), events(1, 1)); err != nil { // stream beta
			t.Fatal(err)
		}
		if m, err := sub.RecvMessage(zmq4.DONTWAIT); err == nil {
			first = m
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(first) != 2 || first[0] != "beta.info" {
		t.Fatalf("message %q; want [beta.info, json]", first)
	}
	ev, err := format.DecodeJSON([]byte(first[1]))
	if err != nil || ev.Message != "event 000001" {
		t.Fatalf("payload %q: %v", first[1], err)
	}
	if err := out.Write(context.Background(), events(2, 4)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		m, err := sub.RecvMessage(0)
		if err != nil {
			t.Fatal(err)
		}
		ev, _ := format.DecodeJSON([]byte(m[1]))
		if ev == nil {
			t.Fatalf("payload %q", m)
		}
		if ev.Message != "event 000001" { // not a late sync message
			got = append(got, ev.Message)
		}
	}
	if got[0] != "event 000003" || got[1] != "event 000005" { // odd = beta
		t.Fatalf("got %q; want events 3 and 5 (stream beta)", got)
	}

	// The subscriber stops reading: past send_hwm (plus kernel buffers)
	// libzmq drops for it, and Write still succeeds.
	if d := testutil.ToFloat64(out.m.pubDropped); d != 0 {
		t.Fatalf("drops before overload = %v", d)
	}
	for i := 0; testutil.ToFloat64(out.m.pubDropped) == 0; i++ {
		if i > 10_000 {
			t.Fatal("no drop counted after 10,000 batches to a subscriber that does not read")
		}
		if err := out.Write(context.Background(), events(1, 100)); err != nil {
			t.Fatalf("PUB Write failed: %v", err)
		}
	}
	t.Logf("drops counted: %v of %v sent", testutil.ToFloat64(out.m.pubDropped), testutil.ToFloat64(out.m.sent))
}

// A PUB with CURVE: a subscriber with the server's key receives, one with
// a wrong server key receives nothing and is counted.
func TestPubCurve(t *testing.T) {
	spub, ssec, _ := zmqsock.NewKeypair()
	wrong, _, _ := zmqsock.NewKeypair()
	ep := freeEndpoint(t)
	cfg := DefaultConfig()
	cfg.Socket = "pub"
	cfg.Bind = cty.StringVal(ep)
	cfg.Curve = &zmqsock.CurveConfig{SecretKey: ssec}
	out := openOutput(t, cfg)
	sub := func(serverKey string) *peer {
		s := newPeer(t, zmq4.SUB)
		cpub, csec, _ := zmqsock.NewKeypair()
		s.SetCurveServerkey(serverKey)
		s.SetCurvePublickey(cpub)
		s.SetCurveSecretkey(csec)
		s.SetSubscribe("")
		s.Connect(ep)
		return s
	}
	bad := sub(wrong)
	good := sub(spub)
	for i := 0; ; i++ {
		if i > 2000 {
			t.Fatal("the good subscriber never received")
		}
		out.Write(context.Background(), events(0, 1))
		if _, err := good.RecvMessage(zmq4.DONTWAIT); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, "a failed handshake", func() bool { return testutil.ToFloat64(out.m.handshake) >= 1 })
	out.Write(context.Background(), events(0, 10))
	if m, err := good.RecvMessage(0); err != nil || len(m) != 2 {
		t.Fatalf("good subscriber: %q %v", m, err)
	}
	if m, err := bad.RecvMessage(zmq4.DONTWAIT); err == nil {
		t.Fatalf("the subscriber with a wrong key received %q", m)
	}
}

func TestFormatsAndMetrics(t *testing.T) {
	ep := freeEndpoint(t)
	pull := newPeer(t, zmq4.PULL)
	pull.Bind(ep)
	cfg := DefaultConfig()
	cfg.Connect = cty.StringVal(ep)
	cfg.Format = "rfc5424"
	out := openOutput(t, cfg)
	ev := &event.Event{Facility: 4, Severity: 2, Host: "h", App: "a", Message: "m", Raw: []byte("raw")}
	if err := out.Write(context.Background(), []*event.Event{ev}); err != nil {
		t.Fatal(err)
	}
	got := pull.recvN(t, 1)[0]
	if want := string(format.RFC5424.Append(nil, ev)); got != want {
		t.Errorf("payload %q; want %q", got, want)
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(out); err != nil {
		t.Fatal(err)
	}
	n, err := testutil.GatherAndCount(reg)
	if err != nil || n != 7 {
		t.Errorf("metrics: %d, %v; want 7", n, err)
	}
	if b := testutil.ToFloat64(out.m.bytes); b != float64(len(got)) {
		t.Errorf("bytes %v; want %d", b, len(got))
	}
}

func TestCloseEndsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	_, ssec, _ := zmqsock.NewKeypair()
	cpub, _, _ := zmqsock.NewKeypair()
	cfg := DefaultConfig()
	cfg.Bind = cty.StringVal(freeEndpoint(t))
	cfg.Curve = &zmqsock.CurveConfig{SecretKey: ssec, AuthorizedKeys: []string{cpub}}
	o, err := New(cfg, outputs.Env{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	out := o.(*Output)
	if err := out.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := out.Write(context.Background(), events(0, 1)); err == nil {
		t.Error("Write after Close succeeded")
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
