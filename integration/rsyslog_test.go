//go:build integration

package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// rsyslog is a real rsyslogd run in the foreground with its own config.
type rsyslog struct {
	t   *testing.T
	dir string
	cmd *exec.Cmd
}

// startRsyslog runs /usr/sbin/rsyslogd -n on conf (%DIR% replaced by its
// work directory) and waits until it listens on port (TCP).
func startRsyslog(t *testing.T, conf string, port int) *rsyslog {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/rsyslogd"); err != nil {
		t.Skip("rsyslogd is not installed (make deps installs it)")
	}
	dir := t.TempDir()
	conf = strings.ReplaceAll(conf, "%DIR%", dir)
	path := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	rs := &rsyslog{t: t, dir: dir}
	rs.cmd = exec.Command("/usr/sbin/rsyslogd", "-n", "-f", path, "-i", filepath.Join(dir, "rsyslogd.pid"))
	out, err := os.Create(filepath.Join(dir, "rsyslogd.out"))
	if err != nil {
		t.Fatal(err)
	}
	rs.cmd.Stdout, rs.cmd.Stderr = out, out
	if err := rs.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { rs.cmd.Wait(); out.Close(); close(exited) }()
	t.Cleanup(func() {
		rs.cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "rsyslogd.out"))
			t.Logf("rsyslogd output:\n%s", b)
		}
	})
	waitTCP(t, port)
	return rs
}

func waitTCP(t *testing.T, port int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := netDial(port)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %d: %v", port, err)
		}
	}
}

// rsyslog → Sluice → rsyslog: a real rsyslogd forwards with omfwd over TCP
// (octet-counted) and UDP into Sluice's syslog input; Sluice's syslog
// output forwards in raw format over TCP to a second rsyslogd, which
// writes each message's %rawmsg%. Every message arrives, byte-exact: the
// receiver's raw messages equal Sluice's own raw archive of what it
// received, and carry what logger sent.
func TestRsyslogThroughSluiceByteExact(t *testing.T) {
	dir := t.TempDir()
	senderPort, sluiceTCP, sluiceUDP, receiverPort := freePort(t), freePort(t), freePort(t), freePort(t)

	receiver := startRsyslog(t, fmt.Sprintf(`global(workDirectory="%%DIR%%")
module(load="imtcp")
input(type="imtcp" port="%d" ruleset="in")
template(name="raw" type="string" string="%%rawmsg%%\n")
ruleset(name="in") {
  action(type="omfile" file="%%DIR%%/received.log" template="raw")
}
`, receiverPort), receiverPort)

	startDaemon(t, dir, fmt.Sprintf(`data_dir = "data"
admin {
  listen = "%%ADMIN%%"
}
input "syslog" "edge" {
  listen = ["tcp://127.0.0.1:%d", "udp://127.0.0.1:%d"]
}
output "syslog" "central" {
  targets = ["tcp://127.0.0.1:%d"]
  format  = "raw"
  batch {
    max_wait = "5ms"
  }
}
`+rawCopyAndRoute, sluiceTCP, sluiceUDP, receiverPort))

	startRsyslog(t, fmt.Sprintf(`global(workDirectory="%%DIR%%")
module(load="imtcp")
input(type="imtcp" port="%d" ruleset="fwd")
template(name="proto23" type="string" string="<%%PRI%%>1 %%TIMESTAMP:::date-rfc3339%% %%HOSTNAME%% %%APP-NAME%% %%PROCID%% %%MSGID%% %%STRUCTURED-DATA%% %%msg%%")
ruleset(name="fwd") {
  if $msg contains "via-tcp" then {
    action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp" TCP_Framing="octet-counted" template="proto23")
  } else {
    action(type="omfwd" target="127.0.0.1" port="%d" protocol="udp" template="RSYSLOG_TraditionalForwardFormat")
  }
}
`, senderPort, sluiceTCP, sluiceUDP), senderPort)

	const n = 200
	var want []string
	for i := range n {
		via := "via-tcp"
		if i%2 == 1 {
			via = "via-udp"
		}
		msg := fmt.Sprintf("%s message %03d with ünïcode and  two spaces", via, i)
		want = append(want, msg)
		logger(t, senderPort, "--tcp", "--octet-count", "--rfc5424", "-t", "app", "-p", "local3.notice", msg)
	}
	received := filepath.Join(receiver.dir, "received.log")
	got := waitLines(t, received, n)
	archived := waitLines(t, filepath.Join(dir, "archive/copy.log"), n)
	slices.Sort(got)
	slices.Sort(archived)
	if !slices.Equal(got, archived) {
		for i := range min(len(got), len(archived)) {
			if got[i] != archived[i] {
				t.Fatalf("receiver and Sluice's raw archive differ:\nreceived %q\narchived %q", got[i], archived[i])
			}
		}
		t.Fatalf("receiver has %d messages, archive %d", len(got), len(archived))
	}
	for _, w := range want {
		found := 0
		for _, g := range got {
			if strings.HasSuffix(g, " "+w) || strings.HasSuffix(g, ":"+w) {
				found++
			}
		}
		if found != 1 {
			t.Fatalf("message %q arrived %d times", w, found)
		}
	}
	tcp, udp := 0, 0
	for _, g := range got {
		switch {
		case strings.Contains(g, "via-tcp") && strings.HasPrefix(g, "<157>1 "):
			tcp++
		case strings.Contains(g, "via-udp") && rfc3164Stamp.MatchString(g):
			udp++
		}
	}
	if tcp != n/2 || udp != n/2 {
		t.Fatalf("%d RFC 5424 messages via TCP and %d RFC 3164 via UDP; want %d each", tcp, udp, n/2)
	}
}

// rawCopyAndRoute completes the rsyslog tests' Sluice configurations: a
// raw archive of what Sluice received, and a route sending everything to it
// and to the syslog output "central".
const rawCopyAndRoute = `output "archive" "copy" {
  path        = "archive/copy.log"
  compression = "none"
  format      = "raw"
  batch {
    max_wait = "5ms"
  }
}
route "all" {
  to = [output.syslog.central, output.archive.copy]
}
`

func netDial(port int) (net.Conn, error) {
	return net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
}
