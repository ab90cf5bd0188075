package zmq

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	zmq4 "github.com/pebbe/zmq4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/zclconf/go-cty/cty"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/internal/zmqsock"
	"github.com/sluicelog/sluice/outputs/format"
	"github.com/sluicelog/sluice/router/event"
)

func bindConfig(ep string) *Config {
	cfg := DefaultConfig()
	cfg.Bind = cty.StringVal(ep)
	return cfg
}

func send(t *testing.T, s *peer, frames ...string) {
	t.Helper()
	for i, f := range frames {
		flag := zmq4.Flag(0)
		if i < len(frames)-1 {
			flag = zmq4.SNDMORE
		}
		if _, err := s.SendBytes([]byte(f), flag); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
}

func TestPullRaw(t *testing.T) {
	ep := freeEndpoint(t)
	snk := newSink()
	m := inputs.NewDiscardMetrics()
	start(t, bindConfig(ep), snk, m)

	push := newPeer(t, zmq4.PUSH)
	if err := push.Connect(ep); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := range n {
		send(t, push, fmt.Sprintf("<13>1 - host app - - - message %d", i))
	}
	evs := snk.wait(t, n)
	if len(evs) != n {
		t.Fatalf("%d events; want %d", len(evs), n)
	}
	for i, ev := range evs {
		want := fmt.Sprintf("<13>1 - host app - - - message %d", i)
		if ev.Message != want || string(ev.Raw) != want {
			t.Fatalf("event %d: message %q raw %q; want %q", i, ev.Message, ev.Raw, want)
		}
		if ev.Input != "zin" || ev.Stream != "zmq" || ev.Host != "127.0.0.1" || ev.Origin != "127.0.0.1" ||
			ev.Facility != -1 || ev.Severity != -1 || ev.Received.IsZero() || !ev.Time.Equal(ev.Received) {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	if got := testutil.ToFloat64(m.Events); got != n {
		t.Errorf("events metric %v; want %d", got, n)
	}
	waitFor(t, "connection gauge", func() bool { return testutil.ToFloat64(m.Connections) == 1 })
	push.close()
	waitFor(t, "connection gauge back to 0", func() bool { return testutil.ToFloat64(m.Connections) == 0 })
}

func sdHas(ev *event.Event, id, param, want string) bool {
	v, ok := ev.SD.Get(id, param)
	return ok && v == want
}

// format = "auto": payloads are parsed as syslog; a payload that is not
// syslog is kept and counted as a parse failure.
func TestPullSyslog(t *testing.T) {
	ep := freeEndpoint(t)
	snk := newSink()
	m := inputs.NewDiscardMetrics()
	cfg := bindConfig(ep)
	cfg.Format = "auto"
	start(t, cfg, snk, m)
	push := newPeer(t, zmq4.PUSH)
	if err := push.Connect(ep); err != nil {
		t.Fatal(err)
	}
	send(t, push, `<165>1 2003-10-11T22:14:15.003Z web-1 nginx 42 ID7 [m@1 k="v"] handled`)
	send(t, push, `<13>Oct 11 22:14:15 db-2 postgres: classic`)
	send(t, push, `plain text`)
	evs := snk.wait(t, 3)
	if ev := evs[0]; ev.Host != "web-1" || ev.App != "nginx" || ev.Message != "handled" || ev.Severity != 5 ||
		ev.Facility != 20 || !sdHas(ev, "m@1", "k", "v") || ev.Origin != "127.0.0.1" || ev.Input != "zin" {
		t.Errorf("RFC 5424 event: %+v", ev)
	}
	if ev := evs[1]; ev.Host != "db-2" || ev.App != "postgres" || ev.Message != "classic" || ev.Severity != 5 {
		t.Errorf("RFC 3164 event: %+v", ev)
	}
	if ev := evs[2]; ev.Message != "plain text" || ev.Host != "127.0.0.1" {
		t.Errorf("unparseable event: %+v", ev)
	}
	if got := testutil.ToFloat64(m.ParseFailures); got != 1 {
		t.Errorf("parse failures %v; want 1", got)
	}
}

// A SUB input gets the messages of its topics only, [topic, payload] and
// single-frame ones alike, and drops messages of more than two frames.
func TestSubTopicsAndFrames(t *testing.T) {
	ep := freeEndpoint(t)
	pub := newPeer(t, zmq4.XPUB)
	if err := pub.Bind(ep); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Socket = "sub"
	cfg.Connect = cty.ListVal([]cty.Value{cty.StringVal(ep)})
	cfg.Topics = []string{"keep"}
	snk := newSink()
	m := inputs.NewDiscardMetrics()
	start(t, cfg, snk, m)

	// The subscription reaches the XPUB as a message: from then on the
	// publisher's filter is in place.
	pub.SetRcvtimeo(20 * time.Second)
	sub, err := pub.RecvBytes(0)
	if err != nil || string(sub) != "\x01keep" {
		t.Fatalf("subscription = %q, %v", sub, err)
	}
	send(t, pub, "keep.a", "one")
	send(t, pub, "other", "not this")
	send(t, pub, "keepsake single frame")
	send(t, pub, "keep", "a", "b") // three frames: dropped
	send(t, pub, "keep", "last")
	evs := snk.wait(t, 3)
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Message)
	}
	if strings.Join(got, "|") != "one|keepsake single frame|last" {
		t.Errorf("messages %q", got)
	}
	if d := testutil.ToFloat64(m.Dropped.WithLabelValues("multipart")); d != 1 {
		t.Errorf("multipart drops = %v; want 1", d)
	}
}

// Sluice's json format round-trips every field; anything else is kept raw
// and counted as a parse failure.
func TestJSONRoundTrip(t *testing.T) {
	ep := freeEndpoint(t)
	cfg := bindConfig(ep)
	cfg.Format = "json"
	snk := newSink()
	m := inputs.NewDiscardMetrics()
	start(t, cfg, snk, m)

	recv := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	sent := []*event.Event{
		{
			Received: recv, Time: recv.Add(-time.Second),
			Input: "edge", Stream: "syslog", Origin: "10.1.2.3:514",
			Facility: 4, Severity: 3, Host: "web-1", App: "sshd", ProcID: "42", MsgID: "ID7",
			Message: "failed password", SD: event.StructuredData{{ID: "meta", Params: []event.SDParam{{Name: "a", Value: "1"}, {Name: "b", Value: "]\"\\"}}}},
			Raw: []byte("<35>1 2026-11-22T09:59:59.123456789Z web-1 sshd 42 ID7 [meta a=\"1\" b=\"\\]\\\"\\\\\"] failed password"),
		},
		{
			Received: recv, Time: recv, Input: "edge", Stream: "nginx", Origin: "/var/log/x.log",
			Facility: -1, Severity: -1, Host: "h\xff", Message: "bad utf8 \xfe", Raw: []byte("bad utf8 \xfe"),
			SD: event.StructuredData{},
		},
	}
	push := newPeer(t, zmq4.PUSH)
	push.Connect(ep)
	for _, ev := range sent {
		send(t, push, string(format.JSON.Append(nil, ev)))
	}
	send(t, push, "not json at all")
	evs := snk.wait(t, 3)
	for i, want := range sent {
		got := evs[i]
		if !got.Time.Equal(want.Time) || !got.Received.Equal(want.Received) {
			t.Errorf("event %d: times %v %v; want %v %v", i, got.Time, got.Received, want.Time, want.Received)
		}
		g, w := *got, *want
		g.Time, g.Received, w.Time, w.Received = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if fmt.Sprintf("%#v", g) != fmt.Sprintf("%#v", w) {
			t.Errorf("event %d:\n got %#v\nwant %#v", i, g, w)
		}
	}
	raw := evs[2]
	if raw.Message != "not json at all" || raw.Input != "zin" || raw.Stream != "zmq" || raw.Facility != -1 {
		t.Errorf("non-JSON payload: %+v", raw)
	}
	if f := testutil.ToFloat64(m.ParseFailures); f != 1 {
		t.Errorf("parse failures = %v; want 1", f)
	}
}

// A frame over max_message_bytes makes libzmq drop the connection before
// allocating it: the event never appears, and the peer reconnects and is
// served again.
func TestMaxMessageBytes(t *testing.T) {
	ep := freeEndpoint(t)
	cfg := bindConfig(ep)
	cfg.MaxMessageBytes = "1KiB"
	snk := newSink()
	start(t, cfg, snk, nil)

	push := newPeer(t, zmq4.PUSH)
	// The peer's monitor (in push's context) shows the disconnect.
	monCtxSock, err := push.ctx.NewSocket(zmq4.PAIR)
	if err != nil {
		t.Fatal(err)
	}
	defer monCtxSock.Close()
	monCtxSock.SetRcvtimeo(20 * time.Second)
	monCtxSock.SetLinger(0)
	monCtxSock.Connect("inproc://push-mon")
	if err := push.Monitor("inproc://push-mon", zmq4.EVENT_HANDSHAKE_SUCCEEDED|zmq4.EVENT_DISCONNECTED); err != nil {
		t.Fatal(err)
	}
	push.Connect(ep)
	waitEvent := func(want zmq4.Event) {
		t.Helper()
		for range 10 {
			ev, _, _, err := monCtxSock.RecvEvent(0)
			if err != nil {
				t.Fatalf("waiting for %v: %v", want, err)
			}
			if ev == want {
				return
			}
		}
		t.Fatalf("no %v", want)
	}
	waitEvent(zmq4.EVENT_HANDSHAKE_SUCCEEDED)
	send(t, push, "small before")
	snk.wait(t, 1)
	send(t, push, strings.Repeat("x", 2048))
	waitEvent(zmq4.EVENT_DISCONNECTED)
	waitEvent(zmq4.EVENT_HANDSHAKE_SUCCEEDED)
	send(t, push, "small after")
	evs := snk.wait(t, 2)
	if len(evs) != 2 || evs[0].Message != "small before" || evs[1].Message != "small after" {
		var msgs []int
		for _, e := range evs {
			msgs = append(msgs, len(e.Message))
		}
		t.Fatalf("events of lengths %v; want the two small ones", msgs)
	}
	push.Monitor("", 0)
}

// While Emit blocks, the input reads nothing: the sender's queue fills
// and its non-blocking sends fail. At shutdown, what libzmq had already
// received is emitted before the input returns.
func TestBackpressureAndDrain(t *testing.T) {
	ep := freeEndpoint(t)
	cfg := bindConfig(ep)
	cfg.ReceiveHWM = 50
	release := make(chan struct{})
	entered := make(chan int, 1) // the first Emit's event count
	snk := newSink()
	snk.block = func(ctx context.Context, call, n int) error {
		if call == 1 {
			entered <- n
			<-release
		}
		return nil
	}
	r := start(t, cfg, snk, nil)

	push := newPeer(t, zmq4.PUSH)
	push.SetSndhwm(10)
	// A send that makes no progress for 2s means every queue between
	// here and the blocked reader is full: libzmq's I/O threads move data
	// in microseconds, and the reader never resumes before the release.
	push.SetSndtimeo(2 * time.Second)
	push.Connect(ep)
	msg := func(i int) string { return fmt.Sprintf("m%07d %s", i, strings.Repeat("p", 90)) }
	send(t, push, msg(0))   // queued until the connection is up
	firstBatch := <-entered // the first Emit holds the reader
	sent := 1
	for ; sent < 5_000_000; sent++ {
		if _, err := push.SendBytes([]byte(msg(sent)), 0); err != nil {
			if !zmqsock.IsAgain(err) {
				t.Fatal(err)
			}
			break
		}
	}
	if sent == 5_000_000 {
		t.Fatal("the sender never hit its high-water mark: no backpressure")
	}
	// The sender is blocked, so every queue in between is full, the
	// input's libzmq queue (receive_hwm) among them.
	r.cancel()
	close(release)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	evs := snk.events()
	for i, ev := range evs {
		if ev.Message != msg(i) {
			t.Fatalf("event %d is %.8q; want a gapless prefix of what was sent", i, ev.Message)
		}
	}
	t.Logf("sent %d before the sender blocked; emitted %d: %d in the first Emit, the rest drained at shutdown", sent, len(evs), firstBatch)
	// Without the drain nothing beyond the first batch would be emitted.
	// libzmq's receive queue holds receive_hwm (50) messages, less those
	// the reader took but libzmq has not yet credited back to the writer
	// (it does so every receive_hwm/2 reads): at least 25.
	if drained := len(evs) - firstBatch; drained < 25 {
		t.Fatalf("drained %d events at shutdown; want the receive queue (at least 25)", drained)
	}
}

// CURVE on the input (it binds: the CURVE server): a sender with the
// right server key gets through; one with a wrong key does not, and the
// failed handshakes are counted as dropped connections.
func TestCurveInput(t *testing.T) {
	spub, ssec, _ := zmqsock.NewKeypair()
	wrong, _, _ := zmqsock.NewKeypair()
	ep := freeEndpoint(t)
	cfg := bindConfig(ep)
	cfg.Curve = &zmqsock.CurveConfig{SecretKey: ssec}
	snk := newSink()
	m := inputs.NewDiscardMetrics()
	start(t, cfg, snk, m)
	sender := func(serverKey, msg string) {
		p := newPeer(t, zmq4.PUSH)
		cpub, csec, _ := zmqsock.NewKeypair()
		p.SetCurveServerkey(serverKey)
		p.SetCurvePublickey(cpub)
		p.SetCurveSecretkey(csec)
		p.Connect(ep)
		send(t, p, msg)
	}
	sender(wrong, "from the wrong key")
	waitFor(t, "a failed handshake", func() bool { return testutil.ToFloat64(m.Dropped.WithLabelValues("handshake")) >= 1 })
	sender(spub, "from the right key")
	evs := snk.wait(t, 1)
	waitFor(t, "more failed handshakes", func() bool { return testutil.ToFloat64(m.Dropped.WithLabelValues("handshake")) >= 3 })
	if evs = snk.events(); len(evs) != 1 || evs[0].Message != "from the right key" {
		var msgs []string
		for _, e := range evs {
			msgs = append(msgs, e.Message)
		}
		t.Fatalf("events %q; want only the one from the right key", msgs)
	}
}
