package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

const reloadUsage = `usage: sluice reload -config FILE [-admin ADDR]

Validates FILE, then asks the running daemon to reload its configuration
through the admin listener (POST /reload on admin.listen, or ADDR). The
daemon reloads the file it was started with: run this after editing it.
Exit status 0 if the daemon applied it, 1 if FILE is invalid or the daemon
refused or could not be reached. Sending SIGHUP to the daemon does the same
without the report.
`

// cmdReload implements `sluice reload`.
func cmdReload(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, reloadUsage) }
	path := fs.String("config", "", "configuration file (HCL) the daemon runs")
	admin := fs.String("admin", "", "the daemon's admin address (default: admin.listen of the configuration)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "sluice reload: -config is required")
		return 2
	}
	cfg, ok := loadConfig(*path, nil, stderr, "; not asking the daemon to reload")
	if !ok {
		return 1
	}
	addr := *admin
	if addr == "" {
		addr = cfg.AdminListen
	}
	if addr == "" {
		fmt.Fprintln(stderr, "sluice reload: the configuration has no admin { listen = … } block; give -admin ADDR or send SIGHUP to the daemon")
		return 1
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintf(stderr, "sluice reload: invalid admin address %q: %v\n", addr, err)
		return 2
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	client := &http.Client{Timeout: 5 * time.Minute} // a reload may wait for outputs to drain
	resp, err := client.Post("http://"+net.JoinHostPort(host, port)+"/reload", "text/plain", nil)
	if err != nil {
		fmt.Fprintf(stderr, "sluice reload: cannot reach the daemon: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "sluice reload: the daemon refused (%s):\n%s", resp.Status, strings.TrimRight(string(body), "\n")+"\n")
		return 1
	}
	fmt.Fprintf(stdout, "%s: reloaded\n", *path)
	return 0
}

// reopenFile is an append-only log file that Reopen swaps for a fresh
// open of the same path (after logrotate renamed it). Safe for concurrent
// use.
type reopenFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func openReopenFile(path string) (*reopenFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening log file: %w", err)
	}
	return &reopenFile{path: path, f: f}, nil
}

func (r *reopenFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Write(p)
}

// Reopen opens the path again; on error the old file stays in use.
func (r *reopenFile) Reopen() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("reopening log file: %w", err)
	}
	r.mu.Lock()
	old := r.f
	r.f = f
	r.mu.Unlock()
	return old.Close()
}

func (r *reopenFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}
