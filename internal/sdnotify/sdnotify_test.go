package sdnotify

import (
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// listen opens a unixgram socket like systemd's notification socket and
// returns the $NOTIFY_SOCKET value that names it.
func listen(t *testing.T, abstract bool) (*net.UnixConn, string) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	env := name
	if abstract {
		name = "\x00sluice-sdnotify-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		env = "@" + name[1:]
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, env
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		t.Run(map[bool]string{false: "path", true: "abstract"}[abstract], func(t *testing.T) {
			c, env := listen(t, abstract)
			t.Setenv("NOTIFY_SOCKET", env)
			n := FromEnv()
			if !n.Enabled() {
				t.Fatal("not enabled with NOTIFY_SOCKET set")
			}
			for _, msg := range []string{"READY=1", Reloading(), "STOPPING=1"} {
				if err := n.Notify(msg); err != nil {
					t.Fatal(err)
				}
				if got := recv(t, c); got != msg {
					t.Fatalf("received %q, want %q", got, msg)
				}
			}
		})
	}
}

func TestNotifyDisabledAndErrors(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n.Enabled() || n.Notify("READY=1") != nil {
		t.Fatal("a Notifier without NOTIFY_SOCKET must do nothing")
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	if err := FromEnv().Notify("READY=1"); err == nil {
		t.Fatal("no error for a socket nobody listens on")
	}
}

// RELOADING=1 carries the CLOCK_MONOTONIC time in µs, which
// Type=notify-reload requires; it grows.
func TestReloading(t *testing.T) {
	re := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=([0-9]+)$`)
	a := re.FindStringSubmatch(Reloading())
	time.Sleep(2 * time.Millisecond)
	b := re.FindStringSubmatch(Reloading())
	if a == nil || b == nil {
		t.Fatalf("bad messages %q %q", Reloading(), Reloading())
	}
	x, _ := strconv.ParseInt(a[1], 10, 64)
	y, _ := strconv.ParseInt(b[1], 10, 64)
	if x <= 0 || y-x < 1000 {
		t.Fatalf("MONOTONIC_USEC %d then %d, 2ms apart", x, y)
	}
}
