package router

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/spool"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/diag/*.golden")

// TestDiagnosticsGolden pins the exact diagnostics (file:line:col, message,
// source line, caret) for each broken config in testdata/diag.
func TestDiagnosticsGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/diag/*.hcl")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, diags := LoadFile(f, testRegistry())
			if !diags.HasErrors() {
				t.Fatal("config loaded without errors")
			}
			var b strings.Builder
			if err := WriteDiagnostics(&b, cfg.Files, diags); err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(f, ".hcl") + ".golden"
			if *update {
				os.WriteFile(golden, []byte(b.String()), 0o644)
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./router -run Golden -update)", err)
			}
			if b.String() != string(want) {
				t.Errorf("diagnostics differ from %s\n--- got\n%s--- want\n%s", golden, b.String(), want)
			}
		})
	}
}

func TestLoadDefaultsAndEnv(t *testing.T) {
	t.Setenv("SLUICE_TEST_SIZE", "2MiB")
	cfg := mustLoadAsIs(t, `
input "feed" "in" {}
output "capture" "a" {
  size = env("SLUICE_TEST_SIZE")
}
output "capture" "b" {
  size = env("SLUICE_TEST_UNSET_WITH_DEFAULT", "1KiB")
  queue {
    type       = "memory"
    max_events = 5
    max_size   = "1MiB"
    when_full  = "drop_newest"
  }
  batch {
    max_events = 10
    max_bytes  = "64KiB"
    max_wait   = "50ms"
  }
  retry {
    initial      = "10ms"
    max          = "1s"
    max_attempts = 4
  }
}
route "all" {
  to = [output.capture.a]
}`)
	if cfg.MemoryLimit != 48<<20 || cfg.QueueBytes() != 1<<20 {
		t.Errorf("memory_limit = %d, queue bytes = %d", cfg.MemoryLimit, cfg.QueueBytes())
	}
	if cfg.DataDir != "data" || cfg.ShutdownTimeout != defaultShutdownTimeout || cfg.AdminListen != "" {
		t.Errorf("defaults: data_dir=%q shutdown=%v admin=%q", cfg.DataDir, cfg.ShutdownTimeout, cfg.AdminListen)
	}
	a, b := cfg.Outputs[0], cfg.Outputs[1]
	if a.Queue != (QueueConfig{Type: "disk", MaxEvents: defaultQueueEvents, MaxBytes: defaultDiskQueueBytes, WhenFull: "block",
		Fsync: spool.FsyncPolicy{Every: time.Second}, Dir: filepath.Join("data", "spool", "a"), Replay: "fifo", BacklogShare: defaultBacklogShare}) {
		t.Errorf("default queue = %+v", a.Queue)
	}
	if a.Batch != (BatchConfig{MaxEvents: defaultBatchEvents, MaxBytes: defaultBatchBytes, MaxWait: defaultBatchWait}) {
		t.Errorf("default batch = %+v", a.Batch)
	}
	if b.Queue.MaxEvents != 5 || b.Queue.MaxBytes != 1<<20 || b.Queue.WhenFull != "drop_newest" {
		t.Errorf("queue = %+v", b.Queue)
	}
	if b.Batch.MaxEvents != 10 || b.Batch.MaxBytes != 64<<10 || b.Batch.MaxWait.Milliseconds() != 50 {
		t.Errorf("batch = %+v", b.Batch)
	}
	if b.Retry.Initial.Milliseconds() != 10 || b.Retry.Max.Seconds() != 1 || b.Retry.MaxAttempts != 4 {
		t.Errorf("retry = %+v", b.Retry)
	}
	if a.StateDir != filepath.Join("data", "state", "output", "a") {
		t.Errorf("state dir = %q", a.StateDir)
	}
}

func TestToEmptyListDrops(t *testing.T) {
	cfg := mustLoad(t, `
input "feed" "in" {}
output "capture" "a" {}
route "nothing" {
  to = []
}`)
	if !cfg.Routes[0].Drop {
		t.Fatal(`to = [] should make the route a drop route`)
	}
}

func TestRetryInitialAboveDefaultMaxRaisesMax(t *testing.T) {
	cfg := mustLoad(t, `
input "feed" "in" {}
output "capture" "a" {
  retry {
    initial = "1m"
  }
}
route "all" {
  to = [output.capture.a]
}`)
	if r := cfg.Outputs[0].Retry; r.Initial != time.Minute || r.Max != time.Minute {
		t.Fatalf("retry = %+v; want initial and max 1m", r)
	}
}
