package tail

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/router/event"
)

func TestMain(m *testing.M) {
	if os.Getenv("SLUICE_TAIL_HELPER") == "1" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// helperMain runs a tail input on $SLUICE_TAIL_PATTERN with state in
// $SLUICE_TAIL_STATE, printing each event's message on stdout and logging
// (JSON) on stderr, until stdin is closed; then it prints
// "#file_error N".
func helperMain() int {
	cfg := testConfig(os.Getenv("SLUICE_TAIL_PATTERN"))
	m := inputs.NewDiscardMetrics()
	in, err := New(cfg, inputs.Env{
		Name:     "helper",
		Logger:   slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		StateDir: os.Getenv("SLUICE_TAIL_STATE"),
		Metrics:  m,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	out := bufio.NewWriter(os.Stdout)
	sink := inputs.SinkFunc(func(_ context.Context, evs []*event.Event) error {
		for _, ev := range evs {
			fmt.Fprintln(out, ev.Message)
		}
		return out.Flush()
	})
	if err := in.Run(ctx, sink); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(out, "#file_error %v\n", testutil.ToFloat64(m.Dropped.WithLabelValues("file_error")))
	out.Flush()
	return 0
}

// A file the daemon may not read (permission denied): logged, counted,
// retried, and read once its permissions are fixed; revoking them again
// does not disturb the open descriptor. chmod does not deny root, and
// tests run as root: the input runs in a child process (this test binary)
// as user nobody (65534) then, as the same user otherwise.
func TestPermissionChange(t *testing.T) {
	asNobody := os.Getuid() == 0
	root := t.TempDir()
	// t.TempDir's directories are 0700: let nobody through.
	for d := root; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()) && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The test binary lives in a 0700 build directory: copy it.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "tail.test")
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	logs, state := filepath.Join(root, "logs"), filepath.Join(root, "state")
	for _, d := range []string{logs, state} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if asNobody {
		if err := os.Chown(state, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(logs, "secret.log")
	appendLines(t, log, "s", 0, 3)
	if err := os.Chmod(log, 0o200); err != nil { // the owner may write, nobody may read
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLUICE_TAIL_HELPER=1", "SLUICE_TAIL_PATTERN="+filepath.Join(logs, "*.log"), "SLUICE_TAIL_STATE="+state)
	if asNobody {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the helper (as nobody: %v): %v", asNobody, err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("helper log:\n%s", tailString(stderr.String(), 6000))
		}
	})
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("helper exited\n%s", stderr.String())
			}
			return l
		case <-time.After(30 * time.Second):
			t.Fatalf("no line from the helper\n%s", stderr.String())
		}
		return ""
	}

	waitFor(t, "the permission error to be logged", func() bool { return strings.Contains(stderr.String(), "permission denied") })
	select {
	case l := <-lines:
		t.Fatalf("read %q from a file it may not read", l)
	default:
	}
	if err := os.Chmod(log, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if l := next(); l != fmt.Sprintf("s-%d", i) {
			t.Fatalf("line %d = %q", i, l)
		}
	}
	// Revoked again: the open descriptor keeps working.
	if err := os.Chmod(log, 0o200); err != nil {
		t.Fatal(err)
	}
	appendLines(t, log, "s", 3, 5)
	for i := 3; i < 5; i++ {
		if l := next(); l != fmt.Sprintf("s-%d", i) {
			t.Fatalf("line %d = %q", i, l)
		}
	}
	stdin.Close()
	last := next()
	var n float64
	if _, err := fmt.Sscanf(last, "#file_error %v", &n); err != nil || n < 1 {
		t.Errorf("helper ended with %q; want #file_error ≥ 1", last)
	}
}
