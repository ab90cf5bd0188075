package zmq

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/internal/zmqsock"
)

// decode parses an HCL block body into a Config with defaults, as the
// router does.
func decode(t *testing.T, src string) *Config {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "test.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parse: %v", diags)
	}
	cfg := DefaultConfig()
	if diags := gohcl.DecodeBody(f.Body, nil, cfg); diags.HasErrors() {
		t.Fatalf("decode: %v", diags)
	}
	return cfg
}

// fieldErrors returns field → message of every *conf.FieldError in err.
func fieldErrors(t *testing.T, err error) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var fe *conf.FieldError
		if !errors.As(e, &fe) {
			t.Errorf("error %q is not a *conf.FieldError", e)
			return
		}
		out[fe.Field] += fe.Err.Error() + "\n"
	}
	walk(err)
	return out
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	pub, sec, err := zmqsock.NewKeypair()
	if err != nil {
		t.Fatal(err)
	}
	shortKey := filepath.Join(dir, "short.key")
	os.WriteFile(shortKey, []byte(sec[:39]+"\n"), 0o600)
	cases := []struct {
		name, src string
		want      map[string]string // field → substring of its message
	}{
		{"bad socket", `socket = "req"
bind = "tcp://*:5556"`, map[string]string{"socket": `unknown socket type "req" (want "pull" or "sub")`}},
		{"sending socket", `socket = "push"
bind = "tcp://*:5556"`, map[string]string{"socket": `"push" is a sending socket`}},
		{"no endpoint", `socket = "pull"`, map[string]string{"bind": "set bind (endpoints to listen on) or connect (endpoints to connect to); both are empty"}},
		{"both endpoints", `bind = "tcp://*:1"
connect = "tcp://h:1"`, map[string]string{"connect": "set bind or connect, not both"}},
		{"topics on pull", `bind = "tcp://*:5556"
topics = ["a"]`, map[string]string{"topics": `topics apply to socket = "sub" only; this input's socket is "pull"`}},
		{"bad endpoint", `bind = ["tcp://*:5556", "udp://x:1", "tcp://*:99999"]`, map[string]string{
			"bind": `unsupported transport "udp"`}},
		{"port out of range", `connect = "tcp://h:99999"`, map[string]string{"connect": `port "99999" is not a number from 1 to 65535`}},
		{"star on connect", `connect = "tcp://*:5"`, map[string]string{"connect": `"*" only makes sense when binding`}},
		{"bind number", `bind = 5`, map[string]string{"bind": "want an endpoint string or a list of them, got a number"}},
		{"unknown format", `bind = "tcp://*:5556"
format = "xml"`, map[string]string{"format": `unknown format "xml" (want "raw", "json", "auto", "rfc5424" or "rfc3164")`}},
		{"max message", `bind = "tcp://*:5556"
max_message_bytes = "32MiB"`, map[string]string{"max_message_bytes": `"32MiB" is out of range (want 1 byte to 16MiB)`}},
		{"hwm", `bind = "tcp://*:5556"
receive_hwm = 0`, map[string]string{"receive_hwm": "0 is out of range"}},
		{"heartbeat", `bind = "tcp://*:5556"
heartbeat = "soon"`, map[string]string{"heartbeat": `invalid duration "soon"`}},
		{"curve key length", `bind = "tcp://*:5556"
curve {
  secret_key = ` + zmqsock.HCLQuote(sec[:30]) + `
}`, map[string]string{"curve.secret_key": "a CURVE key is 40 Z85 characters (32 bytes), got 30 characters"}},
		{"curve key file length", `bind = "tcp://*:5556"
curve {
  secret_key_file = "` + shortKey + `"
}`, map[string]string{"curve.secret_key_file": "got 39 characters"}},
		{"curve bad character", `bind = "tcp://*:5556"
curve {
  secret_key = "` + strings.Repeat("~", 40) + `"
}`, map[string]string{"curve.secret_key": `'~' is not a Z85 character`}},
		{"curve server needs secret", `bind = "tcp://*:5556"
curve {
  server_key = ` + zmqsock.HCLQuote(pub) + `
}`, map[string]string{
			"curve.secret_key": "required: a socket that binds is the CURVE server",
			"curve.server_key": "this socket binds, so it is the CURVE server"}},
		{"curve client needs server key", `connect = "tcp://h:5556"
curve {
  secret_key = ` + zmqsock.HCLQuote(sec) + `
  authorized_keys = [` + zmqsock.HCLQuote(pub) + `]
}`, map[string]string{
			"curve.server_key":      "required: a socket that connects is the CURVE client",
			"curve.authorized_keys": "only a socket that binds (the CURVE server) can authorize clients"}},
		{"curve both forms", `bind = "tcp://*:5556"
curve {
  secret_key      = ` + zmqsock.HCLQuote(sec) + `
  secret_key_file = "` + shortKey + `"
}`, map[string]string{"curve.secret_key": "set secret_key or secret_key_file, not both"}},
		{"curve missing file", `bind = "tcp://*:5556"
curve {
  secret_key_file = "` + filepath.Join(dir, "nope") + `"
}`, map[string]string{"curve.secret_key_file": "cannot read key file"}},
		{"curve bad authorized", `bind = "tcp://*:5556"
curve {
  secret_key      = ` + zmqsock.HCLQuote(sec) + `
  authorized_keys = [` + zmqsock.HCLQuote(pub) + `, "short"]
}`, map[string]string{"curve.authorized_keys": "key 2: a CURVE key is 40 Z85 characters"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(decode(t, c.src), inputs.Env{Name: "x"})
			if err == nil {
				t.Fatal("New accepted the config")
			}
			got := fieldErrors(t, err)
			for field, want := range c.want {
				if !strings.Contains(got[field], want) {
					t.Errorf("field %s: got %q; want it to contain %q (all: %v)", field, got[field], want, got)
				}
			}
			if len(got) != len(c.want) {
				t.Errorf("errors for fields %v; want exactly %v", got, c.want)
			}
		})
	}
}

func TestConfigAccepts(t *testing.T) {
	pub, sec, _ := zmqsock.NewKeypair()
	for _, src := range []string{
		`bind = "tcp://*:5556"`,
		`bind = ["tcp://127.0.0.1:5556", "ipc:///tmp/x.sock"]`,
		`socket = "sub"
connect = ["tcp://a:1", "tcp://b:2"]
topics = ["x", ""]
format = "json"
max_message_bytes = "1MiB"`,
		`bind = "tcp://*:*"
curve {
  secret_key = ` + zmqsock.HCLQuote(sec) + `
  authorized_keys = [` + zmqsock.HCLQuote(pub) + `]
}`,
		`connect = "tcp://h:1"
curve {
  server_key = ` + zmqsock.HCLQuote(pub) + `
}`,
	} {
		if _, err := New(decode(t, src), inputs.Env{Name: "x"}); err != nil {
			t.Errorf("%s\n→ %v", src, err)
		}
	}
}
