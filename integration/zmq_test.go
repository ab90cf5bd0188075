//go:build integration

package integration

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// zmqPeerPy is a libzmq peer (Debian's python3-zmq) the tests drive:
//
//	pull|sub  print every message received as one line on stdout, frames
//	          joined by a tab, flushed per message
//	push|pub  send --count messages "<prefix>-<n>" (pub: [topic, payload],
//	          after the first subscription arrived on its XPUB socket), then
//	          close with a 10s linger
//
// "ready" goes to stderr once the socket is bound/connected.
const zmqPeerPy = `
import argparse, sys, zmq
p = argparse.ArgumentParser()
p.add_argument("role", choices=["pull", "sub", "push", "pub"])
p.add_argument("--bind", action="append", default=[])
p.add_argument("--connect", action="append", default=[])
p.add_argument("--topic", action="append", default=[])
p.add_argument("--count", type=int, default=0)
p.add_argument("--prefix", default="msg")
p.add_argument("--size", type=int, default=0)
p.add_argument("--server-key-file")
p.add_argument("--secret-key-file")
args = p.parse_args()

def key(path):
    return open(path).read().strip().encode()

ctx = zmq.Context()
s = ctx.socket({"pull": zmq.PULL, "sub": zmq.SUB, "push": zmq.PUSH, "pub": zmq.XPUB}[args.role])
if args.server_key_file:
    s.curve_serverkey = key(args.server_key_file)
    if args.secret_key_file:
        sec = key(args.secret_key_file)
        s.curve_secretkey = sec
        s.curve_publickey = zmq.curve_public(sec)
    else:
        pub, sec = zmq.curve_keypair()
        s.curve_publickey, s.curve_secretkey = pub, sec
if args.role == "pub":
    # Unbounded: a daemon slowed by -race and a disk queue must not make
    # this publisher drop at its HWM (PUB semantics, not what is tested).
    s.setsockopt(zmq.SNDHWM, 0)
if args.role == "sub":
    for t in args.topic or [""]:
        s.setsockopt(zmq.SUBSCRIBE, t.encode())
for e in args.bind:
    s.bind(e)
for e in args.connect:
    s.connect(e)
sys.stderr.write("ready\n")
sys.stderr.flush()
if args.role in ("pull", "sub"):
    n = 0
    while args.count == 0 or n < args.count:
        frames = s.recv_multipart()
        sys.stdout.write("\t".join(f.decode("utf-8", "backslashreplace") for f in frames) + "\n")
        sys.stdout.flush()
        n += 1
else:
    if args.role == "pub":
        s.recv()  # the first subscription: the filter is in place
    topics = args.topic or [""]
    for i in range(args.count):
        payload = "%s-%06d" % (args.prefix, i)
        if args.size > len(payload):
            payload += "x" * (args.size - len(payload))
        if args.role == "pub":
            s.send_multipart([topics[i % len(topics)].encode(), payload.encode()])
        else:
            s.send(payload.encode())
    s.close(linger=10000)
ctx.term()
`

// pyPeer is a running zmqPeerPy.
type pyPeer struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	stderr strings.Builder
	ready  chan struct{}
	exited chan struct{}
	err    error
}

// startPy runs zmqPeerPy with args and waits for "ready". It is killed at
// cleanup.
func startPy(t *testing.T, args ...string) *pyPeer {
	t.Helper()
	script := filepath.Join(t.TempDir(), "zmqpeer.py")
	if err := os.WriteFile(script, []byte(zmqPeerPy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import zmq").Run(); err != nil {
		t.Fatalf("Debian's python3-zmq is needed (make deps installs it): %v", err)
	}
	p := &pyPeer{t: t, ready: make(chan struct{}), exited: make(chan struct{})}
	p.cmd = exec.Command("/usr/bin/python3", append([]string{"-u", script}, args...)...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
	})
	wg.Go(func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			if sc.Text() == "ready" {
				once.Do(func() { close(p.ready) })
				continue
			}
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	})
	go func() {
		wg.Wait() // pipes drained before Wait closes them
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("python peer %v stderr:\n%s", args, p.stderr.String())
			p.mu.Unlock()
		}
	})
	select {
	case <-p.ready:
	case <-p.exited:
		t.Fatalf("python peer %v exited: %v\n%s", args, p.err, p.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("python peer %v not ready", args)
	}
	return p
}

// kill sends SIGKILL and waits for the process (idempotent).
func (p *pyPeer) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.exited
}

// wait waits for the peer to exit by itself and fails on an error.
func (p *pyPeer) wait() {
	p.t.Helper()
	select {
	case <-p.exited:
		if p.err != nil {
			p.t.Fatalf("python peer: %v\n%s", p.err, p.stderr.String())
		}
	case <-time.After(60 * time.Second):
		p.t.Fatal("python peer did not finish")
	}
}

func (p *pyPeer) got() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// waitLines waits until the peer printed at least n lines.
func (p *pyPeer) waitLines(n int) []string {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := p.got()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("python peer printed %d lines; want %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitUntil polls cond every 10ms for at most 30s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sendLines writes lines to the daemon's TCP syslog input, newline framed.
func sendLines(t *testing.T, port int, lines []string) {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := bufio.NewWriterSize(c, 64<<10)
	for _, l := range lines {
		w.WriteString(l)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// syslogLines makes n RFC 5424 lines "<PRI>1 … prefix-NNNNNN".
func syslogLines(prefix string, from, n int, sev int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("<%d>1 2026-11-22T10:00:00Z host app - - - %s-%06d", 8+sev, prefix, from+i)
	}
	return out
}

func ep(port int) string { return fmt.Sprintf("tcp://127.0.0.1:%d", port) }

// tail returns the message part after the last space of each line.
func tails(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l[strings.LastIndexByte(l, ' ')+1:]
	}
	return out
}

func TestZmqPushToTwoPullPeers(t *testing.T) {
	dir := t.TempDir()
	in, p1, p2 := freePort(t), freePort(t), freePort(t)
	a := startPy(t, "pull", "--bind", ep(p1))
	b := startPy(t, "pull", "--bind", ep(p2))
	d := startDaemon(t, dir, fmt.Sprintf(`
data_dir = "data"
admin { listen = "%%ADMIN%%" }
input "syslog" "in" { listen = ["tcp://127.0.0.1:%d"] }
output "zmq" "pool" {
  socket  = "push"
  connect = ["%s", "%s"]
  queue { type = "memory" }
}
route "all" { to = [output.zmq.pool] }
`, in, ep(p1), ep(p2)))
	d.waitMetric(`sluice_zmq_peers{output="pool"}`, 2)
	const n = 3000
	sendLines(t, in, syslogLines("ev", 0, n, 6))
	d.waitMetric(`sluice_output_sent_events_total{output="pool"}`, n)
	waitUntil(t, "every event at the peers", func() bool { return len(a.got())+len(b.got()) >= n })
	ga, gb := a.got(), b.got()
	seen := map[string]int{}
	for _, l := range append(tails(ga), tails(gb)...) {
		seen[l]++
	}
	for i := range n {
		if k := seen[fmt.Sprintf("ev-%06d", i)]; k != 1 {
			t.Fatalf("ev-%06d arrived %d times", i, k)
		}
	}
	if len(ga)+len(gb) != n || len(ga) == 0 || len(gb) == 0 {
		t.Fatalf("shares %d + %d; want both > 0, total %d", len(ga), len(gb), n)
	}
	t.Logf("round-robin shares: %d / %d", len(ga), len(gb))
	d.stop()
}

func TestZmqPythonPushIntoPullInput(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	d := startDaemon(t, dir, fmt.Sprintf(`
data_dir = "data"
admin { listen = "%%ADMIN%%" }
input "zmq" "apps" {
  socket = "pull"
  bind   = "%s"
  stream = "apps"
}
output "archive" "out" {
  path        = "out/{stream}.log"
  compression = "none"
  format      = "raw"
}
route "all" { to = [output.archive.out] }
`, ep(port)))
	const n = 5000
	startPy(t, "push", "--connect", ep(port), "--count", strconv.Itoa(n), "--prefix", "py").wait()
	lines := waitLines(t, filepath.Join(dir, "out/apps.log"), n)
	if len(lines) != n {
		t.Fatalf("%d lines; want %d", len(lines), n)
	}
	for i, l := range lines {
		if want := fmt.Sprintf("py-%06d", i); l != want {
			t.Fatalf("line %d = %q; want %q", i, l, want)
		}
	}
	if v := d.metric(`sluice_input_events_total{input="apps"}`); v != n {
		t.Errorf("input events %v; want %d", v, n)
	}
	d.stop()
}

// PUB with topic "{stream}.{severity}" to a python SUB subscribed to
// "syslog.err": it gets the errors and nothing else.
func TestZmqPubToPythonSubWithTopic(t *testing.T) {
	dir := t.TempDir()
	in, pubPort := freePort(t), freePort(t)
	d := startDaemon(t, dir, fmt.Sprintf(`
data_dir = "data"
admin { listen = "%%ADMIN%%" }
input "syslog" "in" { listen = ["tcp://127.0.0.1:%d"] }
output "zmq" "tap" {
  socket = "pub"
  bind   = "%s"
  topic  = "{stream}.{severity}"
  queue { type = "memory" }
}
route "all" { to = [output.zmq.tap] }
`, in, ep(pubPort)))
	sub := startPy(t, "sub", "--connect", ep(pubPort), "--topic", "syslog.err")
	// Slow joiner: send errors until the subscription is in place.
	for i := 0; len(sub.got()) == 0; i++ {
		if i > 500 {
			t.Fatal("the subscriber never received")
		}
		sendLines(t, in, syslogLines("sync", i, 1, 3))
		time.Sleep(20 * time.Millisecond)
	}
	var batch []string
	for i := range 100 {
		batch = append(batch, syslogLines("info", i, 1, 6)[0], syslogLines("err", i, 1, 3)[0], syslogLines("warn", i, 1, 4)[0])
	}
	batch = append(batch, syslogLines("last", 0, 1, 3)...)
	sendLines(t, in, batch)
	var got []string
	waitUntil(t, "the last error", func() bool {
		got = sub.got()
		return strings.HasSuffix(got[len(got)-1], "last-000000")
	})
	errs := 0
	for _, l := range got {
		topic, payload, _ := strings.Cut(l, "\t")
		if topic != "syslog.err" {
			t.Fatalf("topic %q reached a subscriber of syslog.err", topic)
		}
		msg := payload[strings.LastIndexByte(payload, ' ')+1:]
		switch {
		case strings.HasPrefix(msg, "err-"):
			if want := fmt.Sprintf("err-%06d", errs); msg != want {
				t.Fatalf("got %s; want %s", msg, want)
			}
			errs++
		case strings.HasPrefix(msg, "sync-"), msg == "last-000000":
		default:
			t.Fatalf("unexpected message %q", l)
		}
	}
	if errs != 100 {
		t.Fatalf("%d errors; want 100", errs)
	}
	d.stop()
}

func TestZmqPythonPubIntoSubInput(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	d := startDaemon(t, dir, fmt.Sprintf(`
data_dir = "data"
admin { listen = "%%ADMIN%%" }
input "zmq" "feed" {
  socket  = "sub"
  connect = "%s"
  topics  = ["app."]
}
output "archive" "out" {
  path        = "out.log"
  compression = "none"
  format      = "raw"
}
route "all" { to = [output.archive.out] }
`, ep(port)))
	// The publisher binds; Sluice connects (and reconnects) by itself. The
	// python XPUB waits for Sluice's subscription before publishing.
	const n = 3000
	startPy(t, "pub", "--bind", ep(port), "--count", strconv.Itoa(n), "--topic", "app.web", "--topic", "other", "--topic", "app.db").wait()
	want := 2000 // topics cycle app.web, other, app.db: two of three match
	lines := waitLines(t, filepath.Join(dir, "out.log"), want)
	k := 0
	for i := range n {
		if i%3 == 1 {
			continue
		}
		if lines[k] != fmt.Sprintf("msg-%06d", i) {
			t.Fatalf("line %d = %q; want msg-%06d", k, lines[k], i)
		}
		k++
	}
	if len(lines) != want {
		t.Fatalf("%d lines; want %d", len(lines), want)
	}
	d.stop()
}

// A collector killed (SIGKILL) and restarted on the same endpoint gets
// traffic again, Sluice untouched. Killed between batches, nothing the
// worker acknowledged is lost; killed mid-stream, what is lost is exactly
// what was in flight to the dead process: one contiguous run of events.
func TestZmqCollectorRestart(t *testing.T) {
	dir := t.TempDir()
	in, port := freePort(t), freePort(t)
	d := startDaemon(t, dir, fmt.Sprintf(`
data_dir = "data"
admin { listen = "%%ADMIN%%" }
input "syslog" "in" { listen = ["tcp://127.0.0.1:%d"] }
output "zmq" "collector" {
  socket       = "push"
  connect      = "%s"
  send_hwm     = 50
  send_timeout = "300ms"
  queue { type = "disk" }
  retry {
    initial = "50ms"
    max     = "200ms"
  }
}
route "all" { to = [output.zmq.collector] }
`, in, ep(port)))
	sent := `sluice_output_sent_events_total{output="collector"}`

	// Phase 1: between batches.
	c1 := startPy(t, "pull", "--bind", ep(port))
	sendLines(t, in, syslogLines("a", 0, 500, 6))
	c1.waitLines(500)
	c1.kill()
	sendLines(t, in, syslogLines("b", 0, 500, 6))
	// The collector is down: libzmq queues send_hwm (50) messages, then
	// sends time out and the router retries; the rest waits in the queue.
	d.waitMetric(`sluice_zmq_send_timeouts_total{output="collector"}`, 1)
	if v := d.metric(sent); v >= 1000 {
		t.Fatalf("sent_events_total = %v while the collector is down", v)
	}
	c2 := startPy(t, "pull", "--bind", ep(port))
	d.waitMetric(sent, 1000)
	got := append(tails(c1.got()), tails(c2.waitLines(500))...)
	want := append(tails(syslogLines("a", 0, 500, 6)), tails(syslogLines("b", 0, 500, 6))...)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after a restart between batches the collectors got %d events, not exactly the 1000 sent in order", len(got))
	}

	// Phase 2: killed while events stream.
	const n = 20000
	c2lines := len(c2.got())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sendLines(t, in, syslogLines("c", 0, n, 6)) // one connection keeps the order
	}()
	c2.waitLines(c2lines + 2000)
	c2.kill()
	c3 := startPy(t, "pull", "--bind", ep(port))
	<-done
	d.waitMetric(sent, 1000+n)
	lastArrived := func() bool {
		g := c3.got()
		return len(g) > 0 && strings.HasSuffix(g[len(g)-1], fmt.Sprintf("c-%06d", n-1))
	}
	for deadline := time.Now().Add(30 * time.Second); !lastArrived(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			g2, g3 := c2.got()[c2lines:], c3.got()
			t.Fatalf("the last event did not reach the new collector: the killed one got %d (%q … %q), the new one %d (%q … %q)",
				len(g2), g2[0], g2[len(g2)-1], len(g3), g3[:min(1, len(g3))], g3[max(0, len(g3)-1):])
		}
	}
	received := map[int]int{}
	for _, l := range append(tails(c2.got()[c2lines:]), tails(c3.got())...) {
		i, err := strconv.Atoi(strings.TrimPrefix(l, "c-"))
		if err != nil {
			t.Fatalf("line %q", l)
		}
		received[i]++
	}
	var missing []int
	for i := range n {
		switch received[i] {
		case 0:
			missing = append(missing, i)
		case 1:
		default:
			t.Fatalf("c-%06d arrived %d times", i, received[i])
		}
	}
	if len(missing) > 0 {
		sort.Ints(missing)
		first, last := missing[0], missing[len(missing)-1]
		if last-first+1 != len(missing) {
			t.Fatalf("lost events are not one contiguous run: %d missing between c-%06d and c-%06d", len(missing), first, last)
		}
		t.Logf("killed mid-stream: lost c-%06d..c-%06d (%d events in flight to the killed collector); everything after arrived", first, last, len(missing))
	} else {
		t.Logf("killed mid-stream: nothing was in flight, nothing lost")
	}
	d.stop()
}

// A frame over max_message_bytes: libzmq drops that connection before
// allocating the frame; Sluice keeps serving (a later connection gets in).
func TestZmqMaxMessageBytes(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	d := startDaemon(t, dir, fmt.Sprintf(`
data_dir = "data"
admin { listen = "%%ADMIN%%" }
input "zmq" "apps" {
  bind              = "%s"
  max_message_bytes = "1KiB"
}
output "archive" "out" {
  path        = "out.log"
  compression = "none"
  format      = "raw"
}
route "all" { to = [output.archive.out] }
`, ep(port)))
	startPy(t, "push", "--connect", ep(port), "--count", "1", "--prefix", "small-before").wait()
	waitLines(t, filepath.Join(dir, "out.log"), 1)
	startPy(t, "push", "--connect", ep(port), "--count", "1", "--prefix", "big", "--size", "4096").wait()
	startPy(t, "push", "--connect", ep(port), "--count", "1", "--prefix", "small-after").wait()
	lines := waitLines(t, filepath.Join(dir, "out.log"), 2)
	// Both senders are gone: whatever their connections carried was read.
	waitUntil(t, "no open connection", func() bool { return d.metric(`sluice_input_connections{input="apps"}`) == 0 })
	lines = readLines(t, filepath.Join(dir, "out.log"))
	if len(lines) != 2 || lines[0] != "small-before-000000" || lines[1] != "small-after-000000" {
		var lens []int
		for _, l := range lines {
			lens = append(lens, len(l))
		}
		t.Fatalf("archive lines of lengths %v; want the two small messages only", lens)
	}
	resp, err := http.Get("http://" + d.admin + "/healthz")
	if err != nil {
		t.Fatalf("healthz after the oversize frame: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz after the oversize frame: %s", resp.Status)
	}
	d.stop()
}

// CURVE with keys from `sluice keygen`: an authorized client gets the
// events; a client with the wrong server key and one whose key is not
// authorized get nothing, and the failed handshakes are counted.
func TestZmqCurve(t *testing.T) {
	dir := t.TempDir()
	in, port := freePort(t), freePort(t)
	keygen := func(name string) string {
		prefix := filepath.Join(dir, name)
		if out, err := exec.Command(sluiceBin, "keygen", "-out", prefix).CombinedOutput(); err != nil {
			t.Fatalf("keygen: %v\n%s", err, out)
		}
		return prefix
	}
	server, client, stranger, other := keygen("server"), keygen("client"), keygen("stranger"), keygen("other")
	d := startDaemon(t, dir, fmt.Sprintf(`
data_dir = "data"
admin { listen = "%%ADMIN%%" }
input "syslog" "in" { listen = ["tcp://127.0.0.1:%d"] }
output "zmq" "secure" {
  socket = "push"
  bind   = "%s"
  curve {
    secret_key_file      = "%s.key"
    authorized_keys_file = "%s.pub"
  }
  queue { type = "memory" }
}
route "all" { to = [output.zmq.secure] }
`, in, ep(port), server, client))
	wrongServer := startPy(t, "pull", "--connect", ep(port), "--server-key-file", other+".pub", "--secret-key-file", client+".key")
	unauthorized := startPy(t, "pull", "--connect", ep(port), "--server-key-file", server+".pub", "--secret-key-file", stranger+".key")
	d.waitMetric(`sluice_zmq_handshake_failures_total{output="secure"}`, 2)
	good := startPy(t, "pull", "--connect", ep(port), "--server-key-file", server+".pub", "--secret-key-file", client+".key")
	d.waitMetric(`sluice_zmq_peers{output="secure"}`, 1)
	const n = 500
	sendLines(t, in, syslogLines("secret", 0, n, 6))
	d.waitMetric(`sluice_output_sent_events_total{output="secure"}`, n)
	got := good.waitLines(n)
	if len(got) != n || !strings.HasSuffix(got[n-1], fmt.Sprintf("secret-%06d", n-1)) {
		t.Fatalf("authorized client got %d lines", len(got))
	}
	// The bad clients keep retrying and failing; they never got a byte.
	failures := d.metric(`sluice_zmq_handshake_failures_total{output="secure"}`)
	d.waitMetric(`sluice_zmq_handshake_failures_total{output="secure"}`, failures+2)
	if l := wrongServer.got(); len(l) != 0 {
		t.Fatalf("client with the wrong server key received %d messages", len(l))
	}
	if l := unauthorized.got(); len(l) != 0 {
		t.Fatalf("unauthorized client received %d messages", len(l))
	}
	if !strings.Contains(d.logs(), "refused a CURVE client: its public key is not in authorized_keys") {
		t.Errorf("no log line names the refused client key")
	}
	d.stop()
}

// Sluice → Sluice over PUSH/PULL with the json format (and CURVE with
// authorized keys on the collector's input): the collector's JSON lines are
// byte for byte the forwarder's, so every field of every event survived.
func TestZmqSluiceToSluiceJSON(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	in, port := freePort(t), freePort(t)
	keys := t.TempDir()
	for _, name := range []string{"collector", "forwarder"} {
		if out, err := exec.Command(sluiceBin, "keygen", "-out", filepath.Join(keys, name)).CombinedOutput(); err != nil {
			t.Fatalf("keygen: %v\n%s", err, out)
		}
	}
	b := startDaemon(t, dirB, fmt.Sprintf(`
data_dir = "data"
admin { listen = "%%ADMIN%%" }
input "zmq" "forwarders" {
  bind              = "%s"
  format            = "json"
  max_message_bytes = "1MiB"
  curve {
    secret_key_file      = "%s/collector.key"
    authorized_keys_file = "%s/forwarder.pub"
  }
}
output "archive" "json" {
  path        = "out.jsonl"
  compression = "none"
  format      = "json"
}
route "all" { to = [output.archive.json] }
`, ep(port), keys, keys))
	a := startDaemon(t, dirA, fmt.Sprintf(`
data_dir = "data"
admin { listen = "%%ADMIN%%" }
input "syslog" "edge" {
  listen = ["tcp://127.0.0.1:%d", "udp://127.0.0.1:%d"]
  stream = "edge-stream"
}
output "archive" "json" {
  path        = "out.jsonl"
  compression = "none"
  format      = "json"
}
output "zmq" "collector" {
  connect = "%s"
  format  = "json"
  curve {
    server_key_file = "%s/collector.pub"
    secret_key_file = "%s/forwarder.key"
  }
  queue { type = "memory" }
}
route "all" { to = [output.archive.json, output.zmq.collector] }
`, in, in, ep(port), keys, keys))
	lines := []string{
		`<34>1 2026-11-22T10:00:00.123456+02:00 web-1 sshd 4242 ID47 [exampleSDID@32473 iut="3" eventSource="App\"lication" eventID="1011"][meta a="]"] failed password for root`,
		`<13>Nov 22 10:00:01 host-b app[12]: an RFC 3164 line`,
		"<191>1 - - - - - - invalid utf-8 \xff\xfe here",
		`not syslog at all`,
		`<14>1 2026-11-22T10:00:02Z h a - - - tab	and "quotes" and \backslash`,
	}
	sendLines(t, in, lines)
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", in))
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte(`<165>1 2026-11-22T10:00:03Z udp-host udp-app - - [x@1 k="v"] over UDP`))
	c.Close()
	n := len(lines) + 1
	want := waitLines(t, filepath.Join(dirA, "out.jsonl"), n)
	got := waitLines(t, filepath.Join(dirB, "out.jsonl"), n)
	sort.Strings(want) // TCP and UDP may interleave differently; each line is whole
	sort.Strings(got)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event differs after the hop:\nforwarder %s\ncollector %s", want[i], got[i])
		}
	}
	if len(got) != n {
		t.Errorf("collector has %d events; want %d", len(got), n)
	}
	a.stop()
	b.stop()
}

// `sluice tap` against a running Sluice prints the events its -when
// selects, and exits 0 on SIGINT.
func TestZmqTap(t *testing.T) {
	dir := t.TempDir()
	in, pubPort := freePort(t), freePort(t)
	d := startDaemon(t, dir, fmt.Sprintf(`
data_dir = "data"
admin { listen = "%%ADMIN%%" }
input "syslog" "in" { listen = ["tcp://127.0.0.1:%d"] }
output "zmq" "tap" {
  socket = "pub"
  bind   = "%s"
  format = "json"
  queue { type = "memory" }
}
route "all" { to = [output.zmq.tap] }
`, in, ep(pubPort)))
	tap := exec.Command(sluiceBin, "tap", "-connect", ep(pubPort), "-when", `severity <= "err" && !startswith(message, "ignore")`, "-format", "raw")
	var out lockedBuffer
	var errb strings.Builder
	tap.Stdout, tap.Stderr = &out, &errb
	if err := tap.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- tap.Wait() }()
	t.Cleanup(func() { tap.Process.Kill() })
	for i := 0; !strings.Contains(out.String(), "sync-"); i++ {
		if i > 500 {
			t.Fatalf("tap printed nothing\n%s", errb.String())
		}
		sendLines(t, in, syslogLines("sync", i, 1, 3))
		time.Sleep(20 * time.Millisecond)
	}
	var batch []string
	for i := range 50 {
		batch = append(batch, syslogLines("info", i, 1, 6)[0], syslogLines("crit", i, 1, 2)[0],
			fmt.Sprintf("<11>1 2026-11-22T10:00:00Z host app - - - ignore-%06d", i))
	}
	batch = append(batch, syslogLines("last", 0, 1, 0)...)
	sendLines(t, in, batch)
	waitUntil(t, "tap to print the last event", func() bool { return strings.Contains(out.String(), "last-000000") })
	tap.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("tap exited with %v on SIGINT\n%s", err, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("tap did not exit on SIGINT")
	}
	crit := 0
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		msg := l[strings.LastIndexByte(l, ' ')+1:]
		switch {
		case strings.HasPrefix(msg, "crit-"):
			if want := fmt.Sprintf("crit-%06d", crit); msg != want {
				t.Fatalf("tap printed %s; want %s", msg, want)
			}
			crit++
		case strings.HasPrefix(msg, "sync-"), msg == "last-000000":
		default:
			t.Fatalf("tap printed an event its -when excludes: %q", l)
		}
		if !strings.HasPrefix(l, "<") {
			t.Fatalf("tap -format raw printed %q; want the raw syslog line", l)
		}
	}
	if crit != 50 {
		t.Fatalf("tap printed %d crit events; want 50", crit)
	}
	if !strings.Contains(errb.String(), "sluice tap: printed") {
		t.Errorf("tap's summary missing: %q", errb.String())
	}
	d.stop()
}

// lockedBuffer is an io.Writer safe to read while a process writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
