package zmqsock

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	zmq "github.com/pebbe/zmq4"
)

func TestZ85AgainstLibzmq(t *testing.T) {
	for i := range 50 {
		b := bytes.Repeat([]byte{byte(i * 7), byte(255 - i), 0, byte(i)}, 8)
		enc := z85Encode(b)
		if want := zmq.Z85encode(string(b)); enc != want {
			t.Fatalf("z85Encode = %q; libzmq %q", enc, want)
		}
		dec, err := z85Decode(enc)
		if err != nil || !bytes.Equal(dec, b) {
			t.Fatalf("z85Decode(%q) = %x, %v; want %x", enc, dec, err, b)
		}
	}
	if _, err := z85Decode("#####"); err == nil {
		t.Error(`"#####" (above 2^32) decoded`)
	}
}

func TestKeysAgainstLibzmq(t *testing.T) {
	for range 20 {
		pub, sec, err := NewKeypair()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseKey(pub); err != nil {
			t.Fatal(err)
		}
		got, err := PublicKey(sec)
		if err != nil || got != pub {
			t.Fatalf("PublicKey(secret) = %q, %v; want %q", got, err, pub)
		}
		want, err := zmq.AuthCurvePublic(sec)
		if err != nil || want != pub {
			t.Fatalf("libzmq derives %q (%v) from the secret; Go %q", want, err, pub)
		}
	}
	lpub, lsec, err := zmq.NewCurveKeypair()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := PublicKey(lsec); err != nil || got != lpub {
		t.Errorf("PublicKey of a libzmq secret = %q, %v; want %q", got, err, lpub)
	}
}

func TestParseKeyErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "empty CURVE key",
		"abc":                    "got 3 characters",
		strings.Repeat("a", 41):  "got 41 characters",
		strings.Repeat("\"", 40): `'"' is not a Z85 character`,
	} {
		if _, err := ParseKey(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseKey(%q) = %v; want %q", in, err, want)
		}
	}
}

// Keys with "${" or "%{" survive an HCL round trip through HCLQuote.
func TestHCLQuote(t *testing.T) {
	for _, k := range []string{"ab${cd%{ef}$$%%", strings.Repeat("${", 20), "plain"} {
		src := "k = " + HCLQuote(k) + "\n"
		f, diags := hclsyntax.ParseConfig([]byte(src), "x.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", src, diags)
		}
		attrs, _ := f.Body.JustAttributes()
		v, diags := attrs["k"].Expr.Value(nil)
		if diags.HasErrors() || v.AsString() != k {
			t.Errorf("%s reads back as %q (%v); want %q", src, v.AsString(), diags, k)
		}
	}
}

func TestValidateEndpoints(t *testing.T) {
	good := map[string]bool{ // endpoint → bind
		"tcp://*:5556": true, "tcp://127.0.0.1:*": true, "tcp://[::1]:0": true, "tcp://eth0:1": true,
		"tcp://collector-1.east:5557": false, "tcp://[::1]:1": false, "ipc:///run/s.sock": false, "ipc://@abstract": true,
	}
	for ep, bind := range good {
		if errs := ValidateEndpoints([]string{ep}, bind); len(errs) != 0 {
			t.Errorf("%s (bind %v): %v", ep, bind, errs)
		}
	}
	bad := []struct {
		ep   string
		bind bool
		want string
	}{
		{"127.0.0.1:5", true, "want \"tcp://HOST:PORT\" or \"ipc://PATH\""},
		{"udp://x:1", true, `unsupported transport "udp"`},
		{"tcp://x", false, "want tcp://HOST:PORT"},
		{"tcp://:5", true, `empty host (use "*" for every interface)`},
		{"tcp://*:5", false, `"*" only makes sense when binding`},
		{"tcp://h:*", false, "a connect endpoint needs a port number"},
		{"tcp://h:0", false, "port 0"},
		{"tcp://h:70000", true, `port "70000" is not a number`},
		{"tcp://a;b:1", false, "bad host"},
		{"ipc://", true, "empty path"},
	}
	for _, c := range bad {
		errs := ValidateEndpoints([]string{c.ep}, c.bind)
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), c.want) {
			t.Errorf("%s: %v; want %q", c.ep, errs, c.want)
		}
	}
	if errs := ValidateEndpoints([]string{"tcp://h:1", "tcp://h:1"}, false); len(errs) != 1 || !strings.Contains(errs[0].Error(), "listed twice") {
		t.Errorf("duplicate: %v", errs)
	}
}

func TestZAPAnswer(t *testing.T) {
	pub, _, _ := NewKeypair()
	key, _ := ParseKey(pub)
	other, _, _ := NewKeypair()
	okey, _ := ParseKey(other)
	auth := map[[32]byte]bool{[32]byte(key): true}
	req := func(mech string, cred []byte) [][]byte {
		return [][]byte{[]byte("1.0"), []byte("7"), nil, []byte("127.0.0.1"), nil, []byte(mech), cred}
	}
	if a := zapAnswer(req("CURVE", key), auth); a[2] != "200" || a[1] != "7" || a[4] != pub {
		t.Errorf("authorized key: %q", a)
	}
	if a := zapAnswer(req("CURVE", okey), auth); a[2] != "400" {
		t.Errorf("unknown key: %q", a)
	}
	if a := zapAnswer(req("PLAIN", key), auth); a[2] != "400" {
		t.Errorf("PLAIN: %q", a)
	}
	if a := zapAnswer([][]byte{[]byte("2.0"), []byte("1")}, auth); a[2] != "500" {
		t.Errorf("malformed: %q", a)
	}
}

func TestLogLimiter(t *testing.T) {
	l := &LogLimiter{Every: time.Minute}
	now := time.Now()
	if ok, _ := l.Allow("a", now); !ok {
		t.Fatal("first line refused")
	}
	for range 3 {
		if ok, _ := l.Allow("a", now.Add(time.Second)); ok {
			t.Fatal("repeat allowed within the period")
		}
	}
	if ok, n := l.Allow("a", now.Add(2*time.Minute)); !ok || n != 3 {
		t.Fatalf("after the period: %v, suppressed %d; want true, 3", ok, n)
	}
	for i := range 5000 {
		l.Allow(fmt.Sprint(i), now)
	}
	if len(l.last) > maxLimiterKeys {
		t.Errorf("limiter remembers %d keys; bound %d", len(l.last), maxLimiterKeys)
	}
}

func freeEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "tcp://" + l.Addr().String()
}

// events collects PeerEvents from a monitor.
type events struct {
	mu  sync.Mutex
	evs []PeerEvent
}

func (e *events) add(ev PeerEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
}

func (e *events) count(k PeerKind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.evs {
		if ev.Kind == k {
			n++
		}
	}
	return n
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

// CURVE end to end: a server PULL with authorized_keys; an authorized
// client gets through, a client with the wrong server key and one whose
// key is not authorized get nothing through and are reported.
func TestCurveHandshakes(t *testing.T) {
	before := runtime.NumGoroutine()
	spub, ssec, _ := NewKeypair()
	cpub, csec, _ := NewKeypair()
	wrongPub, _, _ := NewKeypair()
	ckey, _ := ParseKey(cpub)
	ep := freeEndpoint(t)
	var evs events
	srv, err := Open(Options{
		Type: zmq.PULL, Bind: []string{ep}, RecvTimeout: 100 * time.Millisecond,
		Curve:  &Curve{Server: true, SecretKey: ssec, Authorized: map[[32]byte]bool{[32]byte(ckey): true}},
		Events: evs.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	client := func(serverKey, pub, sec string) *Socket {
		c, err := Open(Options{Type: zmq.PUSH, Connect: []string{ep}, Curve: &Curve{ServerKey: serverKey, PublicKey: pub, SecretKey: sec}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	wrongServer := client(wrongPub, cpub, csec)
	unknownClient := client(spub, "", "") // ephemeral keypair, not authorized
	good := client(spub, cpub, csec)
	for _, c := range []struct {
		s   *Socket
		msg string
	}{{wrongServer, "wrong server key"}, {unknownClient, "unauthorized"}, {good, "good"}} {
		if _, err := c.s.Z.SendBytes([]byte(c.msg), zmq.DONTWAIT); err != nil {
			t.Fatal(err)
		}
	}
	// Both bad clients fail their handshakes (repeatedly: they retry).
	waitFor(t, "two rejected handshakes", func() bool { return evs.count(PeerRejected) >= 2 })
	b, err := srv.Z.RecvBytes(0)
	if err != nil || string(b) != "good" {
		t.Fatalf("first message = %q, %v; want \"good\"", b, err)
	}
	// Nothing else arrives while the bad clients keep retrying.
	waitFor(t, "more rejected handshakes", func() bool { return evs.count(PeerRejected) >= 4 })
	if b, err := srv.Z.RecvBytes(zmq.DONTWAIT); err == nil {
		t.Fatalf("received %q from a rejected client", b)
	}
	for _, c := range []*Socket{wrongServer, unknownClient, good, srv} {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// Open fails cleanly (no leaked goroutines) when a bind fails, and Detach
// stops new messages while keeping received ones readable.
func TestOpenBindFailureAndDetach(t *testing.T) {
	before := runtime.NumGoroutine()
	ep := freeEndpoint(t)
	var evs events
	a, err := Open(Options{Type: zmq.PULL, Bind: []string{ep}, Events: evs.add, RecvTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Type: zmq.PULL, Bind: []string{ep}, Events: evs.add}); err == nil || !strings.Contains(err.Error(), "bind "+ep) {
		t.Fatalf("second bind: %v", err)
	}
	p, err := Open(Options{Type: zmq.PUSH, Connect: []string{ep}, Linger: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.Z.SendBytes([]byte("one"), 0)
	if b, err := a.Z.RecvBytes(0); err != nil || string(b) != "one" {
		t.Fatalf("got %q, %v", b, err)
	}
	p.Z.SendBytes([]byte("two"), 0)
	waitFor(t, "one connection", func() bool { return evs.count(PeerConnected) == 1 })
	p.Close()
	a.Detach()
	if eps := a.Endpoints(); len(eps) != 1 || eps[0] != ep {
		t.Errorf("endpoints %v", eps)
	}
	a.Close()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}
