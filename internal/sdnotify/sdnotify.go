// Package sdnotify sends service state to systemd (sd_notify(3)): READY=1
// once the daemon serves, RELOADING=1 / READY=1 around a reload,
// STOPPING=1 at shutdown. It speaks the datagram protocol on
// $NOTIFY_SOCKET itself (a path, or an abstract socket written "@name").
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends to one socket. The zero value (no $NOTIFY_SOCKET) sends
// nothing. Safe for concurrent use.
type Notifier struct{ addr string }

// FromEnv returns a Notifier for $NOTIFY_SOCKET (disabled when unset).
func FromEnv() Notifier { return Notifier{addr: os.Getenv("NOTIFY_SOCKET")} }

// Enabled reports whether a socket was given.
func (n Notifier) Enabled() bool { return n.addr != "" }

// Notify sends state (newline-separated VAR=value assignments). It returns
// nil without sending when disabled.
func (n Notifier) Notify(state string) error {
	if n.addr == "" {
		return nil
	}
	addr := n.addr
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// Reloading is the RELOADING=1 message with the CLOCK_MONOTONIC timestamp
// systemd's Type=notify-reload requires.
func Reloading() string {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	usec := ts.Nano() / int64(time.Microsecond)
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", usec)
}
