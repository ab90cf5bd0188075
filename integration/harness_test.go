//go:build integration

// Package integration drives the built sluice binary against real peers:
// util-linux logger, raw TCP/UDP clients, gzip/zcat.
package integration

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var sluiceBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	sluiceBin = os.Getenv("SLUICE_BIN")
	if sluiceBin == "" {
		dir, err := os.MkdirTemp("", "sluice-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		sluiceBin = filepath.Join(dir, "sluice")
		cmd := exec.Command("go", "build", "-race", "-o", sluiceBin, "../cmd/sluice")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building sluice:", err)
			return 1
		}
	}
	return m.Run()
}

// freePort returns a port free for both TCP and UDP on 127.0.0.1 (at the moment of asking).
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// daemon is a running sluice process.
type daemon struct {
	t      *testing.T
	dir    string
	cmd    *exec.Cmd
	admin  string
	logMu  sync.Mutex
	log    bytes.Buffer
	exited chan struct{}
	err    error
}

// startDaemon writes cfg (with %ADMIN% replaced by a free admin address) to
// dir/sluice.hcl, starts the binary there and waits for /readyz.
func startDaemon(t *testing.T, dir, cfg string) *daemon {
	t.Helper()
	return startDaemonWith(t, dir, cfg, nil)
}

// startDaemonWith is startDaemon with extra environment variables and
// arguments of "sluice run" after "-config sluice.hcl".
func startDaemonWith(t *testing.T, dir, cfg string, env []string, args ...string) *daemon {
	t.Helper()
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg = strings.ReplaceAll(cfg, "%ADMIN%", admin)
	if err := os.WriteFile(filepath.Join(dir, "sluice.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, dir: dir, admin: admin, exited: make(chan struct{})}
	d.cmd = exec.Command(sluiceBin, append([]string{"run", "-config", "sluice.hcl", "-log-level", "debug"}, args...)...)
	d.cmd.Dir = dir
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout = &lockedWriter{d: d}
	d.cmd.Stderr = &lockedWriter{d: d}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			d.cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			t.Logf("sluice log:\n%s", d.logs())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.exited:
			t.Fatalf("sluice exited during startup: %v\n%s", d.err, d.logs())
		default:
		}
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return d
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("sluice not ready in time\n%s", d.logs())
	return nil
}

type lockedWriter struct{ d *daemon }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.d.logMu.Lock()
	defer w.d.logMu.Unlock()
	return w.d.log.Write(p)
}

func (d *daemon) logs() string {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	return d.log.String()
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop() {
	d.t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		if d.err != nil {
			d.t.Fatalf("sluice exited with %v\n%s", d.err, d.logs())
		}
	case <-time.After(30 * time.Second):
		d.t.Fatalf("sluice did not stop on SIGTERM\n%s", d.logs())
	}
}

// metric returns the value of the first /metrics sample whose line starts with prefix (0 if absent).
func (d *daemon) metric(prefix string) float64 {
	d.t.Helper()
	resp, err := http.Get("http://" + d.admin + "/metrics")
	if err != nil {
		d.t.Fatalf("scraping metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, prefix+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, prefix)), 64)
			return v
		}
	}
	return 0
}

// waitMetric waits until metric(prefix) >= want.
func (d *daemon) waitMetric(prefix string, want float64) {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got float64
	for time.Now().Before(deadline) {
		if got = d.metric(prefix); got >= want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Fatalf("metric %s = %v; want >= %v\n%s", prefix, got, want, d.logs())
}

// logger runs util-linux logger with args, sending to 127.0.0.1:port.
func logger(t *testing.T, port int, args ...string) {
	t.Helper()
	full := append([]string{"-n", "127.0.0.1", "-P", strconv.Itoa(port)}, args...)
	out, err := exec.Command("logger", full...).CombinedOutput()
	if err != nil {
		t.Fatalf("logger %v: %v\n%s", full, err, out)
	}
}

// captureTCP listens once and returns everything a single client sends.
func captureTCP(t *testing.T, send func(port int)) []byte {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c)
		got <- b
	}()
	send(l.Addr().(*net.TCPAddr).Port)
	return <-got
}

// splitOctetCounted splits an RFC 6587 octet-counted stream into frames.
func splitOctetCounted(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var frames [][]byte
	for len(b) > 0 {
		sp := bytes.IndexByte(b, ' ')
		n, err := strconv.Atoi(string(b[:sp]))
		if sp < 0 || err != nil {
			t.Fatalf("bad octet-counted stream at %q", b)
		}
		frames = append(frames, b[sp+1:sp+1+n])
		b = b[sp+1+n:]
	}
	return frames
}

// readArchive returns the lines of every file matching glob under dir,
// decompressing .gz files with Go's reader, sorted by file name.
func readArchive(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range files {
		lines = append(lines, readLines(t, f)...)
	}
	return lines
}

func readLines(t *testing.T, f string) []string {
	t.Helper()
	raw, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(f, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		raw, err = io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// zcat, a reader nobody here wrote, must agree.
		out, err := exec.Command("gzip", "-dc", f).Output()
		if err != nil {
			t.Fatalf("zcat %s: %v", f, err)
		}
		if !bytes.Equal(out, raw) {
			t.Fatalf("zcat and Go disagree on %s", f)
		}
	}
	s := strings.TrimSuffix(string(raw), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func waitLines(t *testing.T, pattern string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var lines []string
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(pattern)
		lines = lines[:0]
		for _, f := range files {
			if strings.HasSuffix(f, ".gz") {
				continue // gzip files are checked after stop
			}
			b, _ := os.ReadFile(f)
			if s := strings.TrimSuffix(string(b), "\n"); s != "" {
				lines = append(lines, strings.Split(s, "\n")...)
			}
		}
		if len(lines) >= n {
			return lines
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: %d lines; want %d", pattern, len(lines), n)
	return nil
}

var rfc3164Stamp = regexp.MustCompile(`^(<\d+>)[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d `)

func errorsIs(err, target error) bool { return errors.Is(err, target) }
