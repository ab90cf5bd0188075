package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/sluicelog/sluice/internal/zmqsock"
	"github.com/sluicelog/sluice/outputs"
	zmqout "github.com/sluicelog/sluice/outputs/zmq"
	"github.com/sluicelog/sluice/router/event"
)

func TestKeygen(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"keygen"}, &out, &errb); code != 0 {
		t.Fatalf("keygen = %d: %s", code, errb.String())
	}
	// The output is HCL that decodes to a valid, matching keypair.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keys.hcl")
	keys := map[string]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		if k, v, ok := strings.Cut(l, " = "); ok {
			keys[k] = v
		}
	}
	if len(keys) != 2 {
		t.Fatalf("keygen printed %q", out.String())
	}
	conf := fmt.Sprintf(`
data_dir = %q
input "zmq" "in" {
  bind = "tcp://127.0.0.1:*"
  curve {
    secret_key = %s
  }
}
output "zmq" "out" {
  connect = "tcp://127.0.0.1:1"
  curve {
    server_key = %s
  }
}
route "all" {
  to = [output.zmq.out]
}
`, dir, keys["secret_key"], keys["public_key"])
	os.WriteFile(cfg, []byte(conf), 0o644)
	if code := run([]string{"validate", "-config", cfg}, &out, &errb); code != 0 {
		t.Fatalf("a config with the printed keys does not validate:\n%s\n%s", conf, errb.String())
	}

	// -out writes the files, 0600 for the secret, and never overwrites.
	prefix := filepath.Join(dir, "server")
	out.Reset()
	if code := run([]string{"keygen", "-out", prefix}, &out, &errb); code != 0 {
		t.Fatalf("keygen -out = %d: %s", code, errb.String())
	}
	st, err := os.Stat(prefix + ".key")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret key file: %v, %v", st, err)
	}
	sec, _ := os.ReadFile(prefix + ".key")
	pub, _ := os.ReadFile(prefix + ".pub")
	if derived, err := zmqsock.PublicKey(strings.TrimSpace(string(sec))); err != nil || derived != strings.TrimSpace(string(pub)) {
		t.Fatalf("files do not hold a keypair: %v", err)
	}
	if strings.Contains(out.String(), strings.TrimSpace(string(sec))) {
		t.Error("keygen -out printed the secret key")
	}
	errb.Reset()
	if code := run([]string{"keygen", "-out", prefix}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "not overwriting") {
		t.Errorf("second keygen -out = %d, %q", code, errb.String())
	}
}

// Config errors of the zmq plugins reach the diagnostics with the
// attribute's position, nested curve attributes included.
func TestZmqConfigDiagnostics(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.hcl")
	os.WriteFile(cfg, []byte(`data_dir = "`+dir+`"
input "zmq" "in" {
  socket = "pull"
  topics = ["x"]
  curve {
    secret_key = "too-short"
  }
  bind = "tcp://*:5556"
}
output "zmq" "out" {
  socket = "pub"
}
route "all" {
  to = [output.zmq.out]
}
`), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"validate", "-config", cfg}, &out, &errb); code != 1 {
		t.Fatalf("validate = %d", code)
	}
	for _, want := range []string{
		"bad.hcl:4:12: error: Invalid topics: topics apply to socket = \"sub\" only",
		"bad.hcl:6:18: error: Invalid curve.secret_key: a CURVE key is 40 Z85 characters (32 bytes), got 9 characters",
		"bad.hcl:10:1: error: Invalid bind: set bind (endpoints to listen on) or connect (endpoints to connect to); both are empty",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("diagnostics lack %q:\n%s", want, errb.String())
		}
	}
}

func TestTapUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{}, "-connect is required"},
		{[]string{"-connect", "tcp://*:5"}, `"*" only makes sense when binding`},
		{[]string{"-connect", "tcp://h:1", "-when", "hots == 1"}, `Unknown event field: "hots" is not an event field. Did you mean "host"?`},
		{[]string{"-connect", "tcp://h:1", "-when", "severity <="}, "-when:1:12: error: Missing expression"},
		{[]string{"-connect", "tcp://h:1", "-format", "xml"}, `-format: unknown format "xml"`},
		{[]string{"-connect", "tcp://h:1", "-decode", "yaml"}, "-decode: unknown mode"},
		{[]string{"-connect", "tcp://h:1", "-server-key", "short"}, "-server-key: a CURVE key is 40 Z85 characters"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"tap"}, c.args...), &out, &errb); code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("tap %q = %d, stderr %q; want 2 and %q", c.args, code, errb.String(), c.want)
		}
	}
}

// tap against a PUB output: prints the events that match -when, stops
// after -n, and fails when -timeout passes first.
func TestTapPrintsFilteredEvents(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := "tcp://" + l.Addr().String()
	l.Close()
	cfg := zmqout.DefaultConfig()
	cfg.Socket = "pub"
	cfg.Bind = cty.StringVal(ep)
	cfg.Format = "json"
	o, err := zmqout.New(cfg, outputs.Env{Name: "tap"})
	if err != nil {
		t.Fatal(err)
	}
	pub := o.(*zmqout.Output)
	if err := pub.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"tap", "-connect", ep, "-when", `severity <= "err" && host != "noisy"`, "-n", "2", "-timeout", "60s"}, &stdout, &stderr)
	}()
	batch := []*event.Event{
		{Host: "web", Severity: 6, Facility: 1, Message: "info: filtered out", Raw: []byte("info")},
		{Host: "noisy", Severity: 3, Facility: 1, Message: "noisy error: filtered out", Raw: []byte("noisy")},
		{Host: "web", Severity: 3, Facility: 1, Message: "an error", Raw: []byte("<11>an error")},
	}
	// Publish until tap is subscribed and has printed two matches.
	var code int
	for i := 0; ; i++ {
		if err := pub.Write(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		select {
		case code = <-done:
		case <-time.After(20 * time.Millisecond):
			if i > 3000 {
				t.Fatal("tap did not finish")
			}
			continue
		}
		break
	}
	if code != 0 {
		t.Fatalf("tap = %d; stderr %s", code, stderr.String())
	}
	if got := stdout.String(); got != "<11>an error\n<11>an error\n" {
		t.Errorf("stdout %q; want the error event's raw line twice", got)
	}

	// -timeout before -n: exit status 1.
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"tap", "-connect", ep, "-when", "false", "-n", "1", "-timeout", "200ms"}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "-timeout 200ms passed before 1 events") {
		t.Errorf("tap with -timeout = %d, %q", code, stderr.String())
	}
}
