//go:build integration

package integration

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const plainArchiveCfg = `
admin {
  listen = "%ADMIN%"
}
input "syslog" "in" {
  listen = ["tcp://127.0.0.1:%PORT%", "udp://127.0.0.1:%PORT%"]
  stream = "app"
}
output "archive" "raw" {
  path        = "archive/{stream}.log"
  compression = "none"
  format      = "raw"
  batch {
    max_wait = "5ms"
  }
}
output "archive" "json" {
  path        = "archive/{stream}.jsonl"
  compression = "none"
  format      = "json"
  batch {
    max_wait = "5ms"
  }
}
route "all" {
  to = [output.archive.raw, output.archive.json]
}
`

func withPort(cfg string, port int) string {
	return strings.ReplaceAll(cfg, "%PORT%", fmt.Sprint(port))
}

func writeMessages(t *testing.T, dir string, n int, prefix string) string {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s message %04d with some payload [x=%d]\n", prefix, i, i*7)
	}
	f := filepath.Join(dir, prefix+".txt")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// logger over TCP with octet counting, RFC 5424: the archive holds exactly
// the frames logger sent, byte for byte.
func TestLoggerTCPOctetCountingRFC5424ByteExact(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	d := startDaemon(t, dir, withPort(plainArchiveCfg, port))
	msgs := writeMessages(t, dir, 300, "oc")
	args := []string{"--tcp", "--octet-count", "--rfc5424=notime,notq", "-t", "myapp", "--id=4242", "-p", "local3.warning", "-f", msgs}

	ref := splitOctetCounted(t, captureTCP(t, func(p int) { logger(t, p, args...) }))
	if len(ref) != 300 {
		t.Fatalf("reference capture has %d frames", len(ref))
	}
	logger(t, port, args...)
	lines := waitLines(t, filepath.Join(dir, "archive/app.log"), 300)
	if len(lines) != 300 {
		t.Fatalf("archive has %d lines; want 300", len(lines))
	}
	for i, f := range ref {
		if lines[i] != string(f) {
			t.Fatalf("line %d:\n got %q\nwant %q", i, lines[i], f)
		}
	}
	// The parsed fields made it through too.
	jl := waitLines(t, filepath.Join(dir, "archive/app.jsonl"), 300)
	var ev map[string]any
	if err := json.Unmarshal([]byte(jl[7]), &ev); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"app": "myapp", "procid": "4242", "facility": "local3", "severity": "warning",
		"message": "oc message 0007 with some payload [x=49]", "stream": "app", "input": "in"} {
		if ev[k] != want {
			t.Errorf("json %s = %v; want %v", k, ev[k], want)
		}
	}
	d.stop()
}

// logger over TCP with newline framing.
func TestLoggerTCPNewlineRFC5424ByteExact(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	d := startDaemon(t, dir, withPort(plainArchiveCfg, port))
	msgs := writeMessages(t, dir, 200, "nl")
	args := []string{"--tcp", "--rfc5424=notime,notq", "-t", "nlapp", "-f", msgs}
	ref := strings.Split(strings.TrimSuffix(string(captureTCP(t, func(p int) { logger(t, p, args...) })), "\n"), "\n")
	logger(t, port, args...)
	lines := waitLines(t, filepath.Join(dir, "archive/app.log"), 200)
	if strings.Join(lines, "\n") != strings.Join(ref, "\n") {
		t.Fatalf("archive differs from what logger sent:\n got %q…\nwant %q…", lines[0], ref[0])
	}
	d.stop()
}

// logger over TCP and UDP in RFC 3164: every message arrives once; the raw
// line is what logger sent (its timestamp is per invocation, so it is masked).
func TestLoggerRFC3164TCPAndUDP(t *testing.T) {
	for _, proto := range []string{"--tcp", "--udp"} {
		t.Run(proto, func(t *testing.T) {
			dir := t.TempDir()
			port := freePort(t)
			d := startDaemon(t, dir, withPort(plainArchiveCfg, port))
			msgs := writeMessages(t, dir, 100, "bsd")
			args := []string{proto, "--rfc3164", "-t", "bsdapp", "-p", "auth.err", "-f", msgs}
			logger(t, port, args...)
			lines := waitLines(t, filepath.Join(dir, "archive/app.log"), 100)
			if len(lines) != 100 {
				t.Fatalf("got %d lines; want 100", len(lines))
			}
			host, _ := os.Hostname()
			for i, l := range lines {
				masked := rfc3164Stamp.ReplaceAllString(l, "${1}STAMP ")
				want := fmt.Sprintf("<35>STAMP %s bsdapp: bsd message %04d with some payload [x=%d]", strings.Split(host, ".")[0], i, i*7)
				if masked != want {
					t.Fatalf("line %d = %q; want %q", i, masked, want)
				}
			}
			jl := waitLines(t, filepath.Join(dir, "archive/app.jsonl"), 100)
			var ev map[string]any
			json.Unmarshal([]byte(jl[0]), &ev)
			if ev["app"] != "bsdapp" || ev["facility"] != "auth" || ev["severity"] != "err" {
				t.Errorf("parsed 3164 fields wrong: %v", ev)
			}
			if ts, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(ev["time"])); time.Since(ts) > time.Hour || time.Since(ts) < -time.Hour {
				t.Errorf("3164 time %v not inferred near now", ev["time"])
			}
			d.stop()
		})
	}
}

// Routes send different streams and severities to different gzip archives.
func TestRoutesSplitStreamsAndSeverities(t *testing.T) {
	dir := t.TempDir()
	pApp, pNet := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`
admin {
  listen = "%%ADMIN%%"
}
input "syslog" "apps" {
  listen = ["tcp://127.0.0.1:%d"]
  stream = "app"
}
input "syslog" "network" {
  listen = ["udp://127.0.0.1:%d"]
  stream = "net"
}
output "archive" "errors" {
  path  = "archive/errors/%%Y/%%m/%%d.log.gz"
  level = 6
}
output "archive" "streams" {
  path = "archive/{stream}/{app}/%%Y-%%m-%%d-%%H.log.gz"
}
route "errors" {
  when     = severity <= "err"
  to       = [output.archive.errors]
  continue = true
}
route "drop_debug" {
  when = severity == "debug"
  drop = true
}
route "streams" {
  to = [output.archive.streams]
}
`, pApp, pNet)
	d := startDaemon(t, dir, cfg)
	logger(t, pApp, "--tcp", "--octet-count", "--rfc5424", "-t", "web", "-p", "user.err", "app error 1")
	logger(t, pApp, "--tcp", "--octet-count", "--rfc5424", "-t", "web", "-p", "user.info", "app info 1")
	logger(t, pApp, "--tcp", "--octet-count", "--rfc5424", "-t", "web", "-p", "user.debug", "app debug 1")
	logger(t, pNet, "--udp", "--rfc3164", "-t", "router", "-p", "local0.crit", "net crit 1")
	logger(t, pNet, "--udp", "--rfc3164", "-t", "router", "-p", "local0.notice", "net notice 1")
	d.waitMetric(`sluice_output_sent_events_total{output="streams"}`, 4)
	d.waitMetric(`sluice_output_sent_events_total{output="errors"}`, 2)
	d.stop()

	check := func(pattern string, want ...string) {
		t.Helper()
		lines := readArchive(t, filepath.Join(dir, pattern))
		if len(lines) != len(want) {
			t.Fatalf("%s: %d lines %q; want %q", pattern, len(lines), lines, want)
		}
		for i, w := range want {
			if !strings.HasSuffix(lines[i], w) {
				t.Errorf("%s line %d = %q; want suffix %q", pattern, i, lines[i], w)
			}
		}
	}
	check("archive/errors/*/*/*.log.gz", "app error 1", "net crit 1")
	check("archive/app/web/*.log.gz", "app error 1", "app info 1")
	check("archive/net/router/*.log.gz", "net crit 1", "net notice 1")
}

// Bad input: each kind is counted, the daemon stays up and keeps serving a
// well-behaved client.
func TestBadInputIsCountedAndHarmless(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	cfg := withPort(`
admin {
  listen = "%ADMIN%"
}
input "syslog" "in" {
  listen            = ["tcp://127.0.0.1:%PORT%", "udp://127.0.0.1:%PORT%"]
  max_message_bytes = 1024
  max_connections   = 1100
  idle_timeout      = "1m"
}
output "archive" "raw" {
  path        = "archive/all.log"
  compression = "none"
  batch {
    max_wait = "5ms"
  }
}
route "all" {
  to = [output.archive.raw]
}
`, port)
	d := startDaemon(t, dir, cfg)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	send := func(b []byte) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(b)
		c.Close()
	}

	// 1,000 idle connections held open throughout.
	var idle []net.Conn
	for range 1000 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("idle conn %d: %v", len(idle), err)
		}
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	d.waitMetric(`sluice_input_connections{input="in"}`, 1000)

	send([]byte("\x00\xff\xfe garbage \x01\x02 not syslog at all\n"))                                            // kept, parse failure
	send([]byte("<13>1 - h app - - - ok-after-garbage\n"))                                                       // good
	send([]byte("2000 <13>1 - h app - - - " + strings.Repeat("x", 1975) + "3 <1>x\n"))                           // oversize octet frame, skipped
	send([]byte("<13>1 - h app - - - " + strings.Repeat("y", 3000) + "\n<13>1 - h app - - - after-long-line\n")) // oversize LF frame
	send([]byte("1000000000000 <13>1 - h app - - - huge-length"))                                                // MSGLEN 10^12
	send([]byte("40 <13>1 - h app - - - unterminat"))                                                            // truncated octet frame at close (30 of 40 bytes)
	send([]byte("<13>1 - h app - - - non-utf8 \xc3\x28 \xff end\n"))                                             // non-UTF-8 kept raw
	u, _ := net.Dial("udp", addr)
	u.Write([]byte("<13>1 - h app - - - via-udp"))
	u.Close()
	send([]byte("<13>1 - h app - - - final-good\n"))

	lines := waitLines(t, filepath.Join(dir, "archive/all.log"), 6)
	d.waitMetric(`sluice_input_dropped_total{input="in",reason="oversize"}`, 2)
	d.waitMetric(`sluice_input_parse_failures_total{input="in"}`, 1)
	joined := strings.Join(lines, "\n")
	for _, want := range []string{"ok-after-garbage", "after-long-line", "non-utf8 \xc3\x28 \xff end", "via-udp", "final-good", "garbage"} {
		if !strings.Contains(joined, want) {
			t.Errorf("archive lacks %q", want)
		}
	}
	if strings.Contains(joined, "xxxx") || strings.Contains(joined, "yyyy") || strings.Contains(joined, "huge-length") {
		t.Error("an oversize frame reached the archive")
	}
	bad := d.metric(`sluice_input_dropped_total{input="in",reason="bad_frame"}`) + d.metric(`sluice_input_dropped_total{input="in",reason="truncated"}`)
	if bad < 2 {
		t.Errorf("bad_frame+truncated drops = %v; want >= 2", bad)
	}
	// Still serving after all that, with the idle connections open.
	logger(t, port, "--tcp", "--octet-count", "--rfc5424", "-t", "late", "still alive")
	waitLines(t, filepath.Join(dir, "archive/all.log"), 7)
	d.stop()
}

// SIGTERM drains queues: everything accepted before the signal is archived
// and the gzip files are complete.
func TestSIGTERMDrainsEverything(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	cfg := withPort(`
admin {
  listen = "%ADMIN%"
}
input "syslog" "in" {
  listen = ["tcp://127.0.0.1:%PORT%"]
}
output "archive" "gz" {
  path = "archive/%Y%m%d.log.gz"
  batch {
    max_wait = "1s"
  }
}
route "all" {
  to = [output.archive.gz]
}
`, port)
	d := startDaemon(t, dir, cfg)
	msgs := writeMessages(t, dir, 5000, "drain")
	logger(t, port, "--tcp", "--octet-count", "--rfc5424=notime,notq", "-t", "d", "-f", msgs)
	d.waitMetric(`sluice_input_events_total{input="in"}`, 5000)
	d.stop()
	lines := readArchive(t, filepath.Join(dir, "archive/*.log.gz"))
	if len(lines) != 5000 {
		t.Fatalf("archive has %d lines after SIGTERM; want 5000", len(lines))
	}
}

// kill -9 while writing gzip archives: on restart every archive is readable
// by zcat, and no line is torn or duplicated.
func TestKill9LeavesReadableArchives(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	cfg := withPort(`
admin {
  listen = "%ADMIN%"
}
input "syslog" "in" {
  listen = ["tcp://127.0.0.1:%PORT%"]
}
output "archive" "gz" {
  path  = "archive/%Y%m%d.log.gz"
  level = 6
  batch {
    max_events = 50
    max_wait   = "1ms"
  }
}
route "all" {
  to = [output.archive.gz]
}
`, port)
	for round := range 3 {
		d := startDaemon(t, dir, cfg)
		msgs := writeMessages(t, dir, 20000, fmt.Sprintf("r%d", round))
		sender := exec.Command("logger", "-n", "127.0.0.1", "-P", fmt.Sprint(port), "--tcp", "--octet-count",
			"--rfc5424=notime,notq", "-t", "k", "-f", msgs)
		if err := sender.Start(); err != nil {
			t.Fatal(err)
		}
		// This round's events are accepted (the input counts only them;
		// sent also counts the previous round's redelivered backlog).
		d.waitMetric(`sluice_input_events_total{input="in"}`, 1000)
		d.waitMetric(`sluice_output_sent_events_total{output="gz"}`, 500)
		d.cmd.Process.Kill()
		<-d.exited
		sender.Wait() // it fails once the daemon is gone; that is expected
	}
	// A kill rarely lands inside a write(2), so also leave what a torn
	// write would: the first half of a valid gzip member.
	files, _ := filepath.Glob(filepath.Join(dir, "archive/*.log.gz"))
	if len(files) != 1 {
		t.Fatalf("archive files: %v", files)
	}
	var member bytes.Buffer
	zw := gzip.NewWriter(&member)
	zw.Write([]byte(strings.Repeat("torn line that must not survive\n", 200)))
	zw.Close()
	f, err := os.OpenFile(files[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(member.Bytes()[:member.Len()/2])
	f.Close()

	d := startDaemon(t, dir, cfg) // recovery happens on start
	d.stop()
	if !strings.Contains(d.logs(), "truncated torn data after a crash") {
		t.Fatalf("restart did not report truncating the torn member\n%s", d.logs())
	}
	lines := readArchive(t, filepath.Join(dir, "archive/*.log.gz")) // Go reader and zcat must both read it all
	// The disk queue (the default) delivers at least once: an event written
	// just before a kill whose acknowledgement was not yet saved comes
	// again. But nothing the input accepted is lost: each round's messages
	// form an unbroken run from 0 (TCP delivers in order; the input accepts
	// in order; the queue keeps what it accepted).
	seen := map[string]bool{}
	dups := 0
	highest := make([]int, 3)
	got := make([]map[int]bool, 3)
	for r := range got {
		got[r], highest[r] = map[int]bool{}, -1
	}
	for _, l := range lines {
		if !strings.Contains(l, " message ") || !strings.HasSuffix(l, "]") || strings.Contains(l, "torn") {
			t.Fatalf("torn line in archive: %q", l)
		}
		if seen[l] {
			dups++
			continue
		}
		seen[l] = true
		var r, n, x int
		if _, err := fmt.Sscanf(l[strings.Index(l, " r"):], " r%d message %d with some payload [x=%d]", &r, &n, &x); err != nil || r < 0 || r > 2 || x != n*7 {
			t.Fatalf("unexpected line %q (%v)", l, err)
		}
		got[r][n] = true
		highest[r] = max(highest[r], n)
	}
	for r := range got {
		if highest[r] < 499 {
			t.Errorf("round %d: only up to message %d survived; at least 500 were written", r, highest[r])
		}
		for n := 0; n <= highest[r]; n++ {
			if !got[r][n] {
				t.Fatalf("round %d: message %d missing while %d arrived: an accepted event was lost", r, n, highest[r])
			}
		}
	}
	t.Logf("%d distinct lines, %d redelivered after the kills", len(seen), dups)
}

// The first SIGTERM drains (here it cannot: the archive file is a FIFO
// nobody reads, so the worker blocks in open); a second one exits at once.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	if err := os.MkdirAll(filepath.Join(dir, "archive"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "archive/stuck.log"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, dir, withPort(`
shutdown_timeout = "5m"
admin {
  listen = "%ADMIN%"
}
input "syslog" "in" {
  listen = ["tcp://127.0.0.1:%PORT%"]
}
output "archive" "stuck" {
  path        = "archive/stuck.log"
  compression = "none"
}
route "all" {
  to = [output.archive.stuck]
}
`, port))
	logger(t, port, "--tcp", "--octet-count", "--rfc5424", "never written")
	d.waitMetric(`sluice_input_events_total{input="in"}`, 1)
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		t.Fatal("exited on the first signal while events were still draining")
	case <-time.After(time.Second):
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("second signal did not end the process")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit code %d; want 130", code)
	}
	if !strings.Contains(d.logs(), "second signal") {
		t.Errorf("no log line for the second signal")
	}
}

// kill -9 with a disk queue: every event the input accepted while the
// output was stuck is delivered after the restart, once.
func TestDiskQueueSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	if err := os.MkdirAll(filepath.Join(dir, "archive"), 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "archive/out.log")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := withPort(`
admin {
  listen = "%ADMIN%"
}
input "syslog" "in" {
  listen = ["tcp://127.0.0.1:%PORT%"]
}
output "archive" "out" {
  path        = "archive/out.log"
  compression = "none"
  queue {
    type  = "disk"
    fsync = "always"
  }
}
route "all" {
  to = [output.archive.out]
}
`, port)
	d := startDaemon(t, dir, cfg)
	msgs := writeMessages(t, dir, 2000, "durable")
	logger(t, port, "--tcp", "--octet-count", "--rfc5424=notime,notq", "-t", "dq", "-f", msgs)
	d.waitMetric(`sluice_input_events_total{input="in"}`, 2000)
	d.cmd.Process.Kill() // the worker is stuck opening the FIFO: nothing was delivered
	<-d.exited
	if err := os.Remove(fifo); err != nil {
		t.Fatal(err)
	}
	d = startDaemon(t, dir, cfg)
	lines := waitLines(t, filepath.Join(dir, "archive/out.log"), 2000)
	d.stop()
	lines = readArchive(t, filepath.Join(dir, "archive/out.log"))
	if len(lines) != 2000 {
		t.Fatalf("%d lines after kill -9 and restart; want 2000", len(lines))
	}
	for i, l := range lines {
		if want := fmt.Sprintf("durable message %04d with some payload [x=%d]", i, i*7); !strings.HasSuffix(l, want) {
			t.Fatalf("line %d = %q; want suffix %q", i, l, want)
		}
	}
}
