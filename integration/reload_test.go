//go:build integration

package integration

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func reloadConfig(port int, outputs, targets []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `data_dir = "data"
admin {
  listen = "%%ADMIN%%"
}
input "syslog" "edge" {
  listen = ["tcp://127.0.0.1:%d"]
}
`, port)
	for _, o := range outputs {
		fmt.Fprintf(&b, `output "archive" %q {
  path        = "archive/%s.log"
  compression = "none"
  format      = "raw"
  batch {
    max_wait = "5ms"
  }
}
`, o, o)
	}
	var refs []string
	for _, o := range targets {
		refs = append(refs, "output.archive."+o)
	}
	fmt.Fprintf(&b, "route \"all\" {\n  to = [%s]\n}\n", strings.Join(refs, ", "))
	return b.String()
}

// Reload under load with the built binary: one TCP sender streams numbered
// messages on a single connection while SIGHUP and `sluice reload` add an
// output, switch the route and remove the first output, and a broken
// config is refused. The connection is never dropped (the unchanged input
// keeps running), nothing is lost, and each output holds exactly one
// contiguous run of the sequence: a = [0, k2), b = [k1, N) with k1 <= k2.
func TestReloadUnderLoadBinary(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	d := startDaemon(t, dir, reloadConfig(port, []string{"a"}, []string{"a"}))
	adminCfg := func(src string) string { return strings.ReplaceAll(src, "%ADMIN%", d.admin) }
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "sluice.hcl"), []byte(adminCfg(src)), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var sent atomic.Int64
	stop := make(chan struct{})
	sendErr := make(chan error, 1)
	go func() {
		w := bufio.NewWriter(conn)
		deadline := time.Now().Add(60 * time.Second)
		for i := 0; i < 2_000_000 && time.Now().Before(deadline); i++ {
			select {
			case <-stop:
				err := w.Flush()
				sent.Store(int64(i)) // lines 0..i-1 are written
				sendErr <- err
				return
			default:
			}
			fmt.Fprintf(w, "<14>1 2026-12-04T10:00:00Z host app - - - seq %d\n", i)
			if i%50 == 49 {
				if err := w.Flush(); err != nil {
					sendErr <- err
					return
				}
				sent.Store(int64(i + 1))
				time.Sleep(time.Millisecond)
			}
		}
		sendErr <- w.Flush()
	}()
	waitFor := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); sent.Load() < n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("sender stuck at %d", sent.Load())
			}
		}
	}
	reloads := func() float64 { return d.metric(`sluice_config_reloads_total{result="success"}`) }

	waitFor(2000)
	write(reloadConfig(port, []string{"a", "b"}, []string{"a", "b"}))
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitMetric(`sluice_config_reloads_total{result="success"}`, 1)

	waitFor(sent.Load() + 2000)
	write(reloadConfig(port, []string{"b"}, []string{"b"}))
	out, err := exec.Command(sluiceBin, "reload", "-config", filepath.Join(dir, "sluice.hcl")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "reloaded") {
		t.Fatalf("sluice reload: %v\n%s", err, out)
	}
	if got := reloads(); got != 2 {
		t.Fatalf("successful reloads = %v, want 2", got)
	}

	waitFor(sent.Load() + 2000)
	write(reloadConfig(port, []string{"b"}, []string{"c"})) // unknown output
	out, err = exec.Command(sluiceBin, "reload", "-config", filepath.Join(dir, "sluice.hcl"), "-admin", d.admin).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Unknown output") {
		t.Fatalf("sluice reload of a broken config: %v\n%s", err, out)
	}
	d.cmd.Process.Signal(syscall.SIGHUP) // the daemon checks it too
	for deadline := time.Now().Add(10 * time.Second); d.metric(`sluice_config_reloads_total{result="invalid"}`) < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP with a broken config was not refused")
		}
	}
	if got := d.metric("sluice_config_last_reload_successful"); got != 0 {
		t.Fatalf("last_reload_successful = %v after a broken config", got)
	}

	waitFor(sent.Load() + 2000)
	close(stop)
	if err := <-sendErr; err != nil {
		t.Fatalf("sender: %v (the unchanged input must keep its connections)", err)
	}
	total := sent.Load()
	conn.Close()
	d.waitMetric(`sluice_input_events_total{input="edge"}`, float64(total))
	d.stop()

	seqs := func(name string) []int {
		var out []int
		for _, l := range readLines(t, filepath.Join(dir, "archive", name+".log")) {
			i := strings.LastIndex(l, "seq ")
			n, err := strconv.Atoi(l[i+4:])
			if i < 0 || err != nil {
				t.Fatalf("%s: bad line %q", name, l)
			}
			out = append(out, n)
		}
		return out
	}
	a, b := seqs("a"), seqs("b")
	contiguous := func(name string, s []int) {
		for i := 1; i < len(s); i++ {
			if s[i] != s[i-1]+1 {
				t.Fatalf("output %s: %d follows %d (a gap, a duplicate or reordering)", name, s[i], s[i-1])
			}
		}
	}
	contiguous("a", a)
	contiguous("b", b)
	if len(a) == 0 || a[0] != 0 || len(b) == 0 || b[len(b)-1] != int(total-1) {
		t.Fatalf("a = [%v…], b = […%v], sent %d", a[:1], b[len(b)-1:], total)
	}
	k2, k1 := a[len(a)-1]+1, b[0]
	if k1 > k2 {
		t.Fatalf("events [%d, %d) reached no output", k2, k1)
	}
	if k1 < 2000 || k2 > int(total)-2000 {
		t.Fatalf("switch points %d and %d outside the reload windows (sent %d)", k1, k2, total)
	}
	t.Logf("sent %d; a got [0, %d), b got [%d, %d): %d went to both while both were configured", total, k2, k1, total, k2-k1)
}

// The daemon tells systemd (NOTIFY_SOCKET) when it is ready, reloading and
// stopping; SIGUSR1 reopens -log-file after a rotation.
func TestServiceNotifyAndLogReopen(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := l.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	expect := func(prefix string) {
		t.Helper()
		select {
		case m := <-msgs:
			if !strings.HasPrefix(m, prefix) {
				t.Fatalf("notification %q; want %s…", m, prefix)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s notification", prefix)
		}
	}
	port := freePort(t)
	d := startDaemonWith(t, dir, reloadConfig(port, []string{"a"}, []string{"a"}), []string{"NOTIFY_SOCKET=" + sock}, "-log-file", "sluice.log")
	expect("READY=1")
	d.cmd.Process.Signal(syscall.SIGHUP)
	expect("RELOADING=1\nMONOTONIC_USEC=")
	expect("READY=1")

	logPath := filepath.Join(dir, "sluice.log")
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "configuration reloaded") {
		t.Fatalf("log file lacks the reload:\n%s", b)
	}
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGUSR1)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(logPath); err == nil && strings.Contains(string(b), "log file reopened") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGUSR1 did not reopen the log file")
		}
	}
	d.stop()
	expect("STOPPING=1")
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "stopped") {
		t.Fatalf("new log file lacks the shutdown:\n%s", b)
	}
}
