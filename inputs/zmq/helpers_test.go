package zmq

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	zmq4 "github.com/pebbe/zmq4"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/router/event"
)

// freeEndpoint returns "tcp://127.0.0.1:PORT" with a port free at the
// moment of asking.
func freeEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprintf("tcp://%s", l.Addr())
}

// peer is a libzmq socket in a context of its own, closed at cleanup.
type peer struct {
	ctx *zmq4.Context
	*zmq4.Socket
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
	p := &peer{ctx: ctx, Socket: s}
	t.Cleanup(p.close)
	return p
}

func (p *peer) close() {
	p.Socket.Close()
	p.ctx.Term()
}

// sink collects emitted events; block, if set, is called at the start of
// every Emit with the call's number (from 1) and its event count.
type sink struct {
	mu    sync.Mutex
	evs   []*event.Event
	calls int
	block func(ctx context.Context, call, n int) error
	more  chan struct{} // signalled (non-blocking) after each Emit
}

func newSink() *sink { return &sink{more: make(chan struct{}, 1)} }

func (s *sink) Emit(ctx context.Context, evs []*event.Event) error {
	s.mu.Lock()
	s.calls++
	call := s.calls
	block := s.block
	s.mu.Unlock()
	if block != nil {
		if err := block(ctx, call, len(evs)); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.evs = append(s.evs, evs...)
	s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
	return nil
}

func (s *sink) events() []*event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*event.Event(nil), s.evs...)
}

// wait returns once the sink holds at least n events, or fails the test
// after 20s (a hang, not a timing assertion).
func (s *sink) wait(t *testing.T, n int) []*event.Event {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if evs := s.events(); len(evs) >= n {
			return evs
		}
		select {
		case <-s.more:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("sink holds %d events; want %d", len(s.events()), n)
		}
	}
}

// running is an input whose Run goroutine the test controls.
type running struct {
	in     *Input
	cancel context.CancelFunc
	done   chan error
}

// start builds cfg into an input, runs it with snk and waits until it is
// ready.
func start(t *testing.T, cfg *Config, snk inputs.Sink, m *inputs.Metrics) *running {
	t.Helper()
	if m == nil {
		m = inputs.NewDiscardMetrics()
	}
	built, err := New(cfg, inputs.Env{Name: "zin", Metrics: m})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	in := built.(*Input)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{in: in, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- in.Run(ctx, snk) }()
	select {
	case <-in.Ready():
	case err := <-r.done:
		cancel()
		t.Fatalf("Run ended before ready: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("input not ready")
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the input and waits for Run (idempotent).
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

// waitFor polls cond every 10ms for up to 20s (fails the test after).
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
