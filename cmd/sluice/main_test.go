package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/testpki"
	"github.com/sluicelog/sluice/router"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// Every file in examples/ (and its subdirectories) must load with the real
// plugin registry. Files the examples read (CAs, certificates) come from
// the environment.
func TestExamplesLoad(t *testing.T) {
	ca := testpki.NewCA(t, t.TempDir(), "siem")
	srv := ca.Server(t, "server")
	t.Setenv("SIEM_CA", ca.CertFile)
	t.Setenv("TLS_CERT", srv.CertFile)
	t.Setenv("TLS_KEY", srv.KeyFile)
	t.Setenv("TLS_CLIENT_CA", ca.CertFile)
	files, err := filepath.Glob("../../examples/*.hcl")
	more, _ := filepath.Glob("../../examples/*/*.hcl")
	files = append(files, more...)
	if err != nil || len(files) < 2 || len(more) == 0 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, diags := router.LoadFile(f, registry(nil))
			if diags.HasErrors() {
				var b bytes.Buffer
				router.WriteDiagnostics(&b, cfg.Files, diags)
				t.Fatalf("%s does not load:\n%s", f, b.String())
			}
			if len(cfg.Inputs) == 0 || len(cfg.Outputs) == 0 || len(cfg.Routes) == 0 {
				t.Errorf("%s: %d inputs, %d outputs, %d routes; an example should show all three",
					f, len(cfg.Inputs), len(cfg.Outputs), len(cfg.Routes))
			}
		})
	}
}

func TestValidateExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"validate", "-config", "../../examples/quickstart.hcl"}, &out, &errb); code != 0 {
		t.Fatalf("validate quickstart = %d; stderr:\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "ok") {
		t.Errorf("validate output %q lacks ok", out.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"validate", "-config", "testdata/missing.hcl"}, &out, &errb); code != 1 {
		t.Errorf("validate of a missing file = %d; want 1", code)
	}
	if code := run([]string{"validate"}, &out, &errb); code != 2 {
		t.Errorf("validate without -config = %d; want 2", code)
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 {
		t.Errorf("unknown command = %d; want 2", code)
	}
	out.Reset()
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "sluice ") {
		t.Errorf("version = %d, %q", code, out.String())
	}
}

// The real plugins' and rules' errors come out with file:line:col, all at once.
func TestValidateGoldenPluginErrors(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"validate", "-config", "testdata/bad_plugins.hcl"}, &out, &errb)
	if code != 1 {
		t.Fatalf("validate = %d; want 1", code)
	}
	golden := "testdata/bad_plugins.golden"
	if *update {
		os.WriteFile(golden, errb.Bytes(), 0o644)
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/sluice -update)", err)
	}
	if errb.String() != string(want) {
		t.Errorf("diagnostics differ from %s\n--- got\n%s--- want\n%s", golden, errb.String(), want)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	var errb bytes.Buffer
	if code := run([]string{"run", "-config", "testdata/bad_plugins.hcl"}, &bytes.Buffer{}, &errb); code != 1 {
		t.Fatalf("run with a bad config = %d; want 1", code)
	}
	if !strings.Contains(errb.String(), "not starting") {
		t.Errorf("stderr lacks 'not starting':\n%s", errb.String())
	}
	if code := run([]string{"run", "-config", "x", "-log-format", "yaml"}, &bytes.Buffer{}, &errb); code != 2 {
		t.Errorf("bad -log-format = %d; want 2", code)
	}
}
