package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/spool"
)

// spoolConfig writes a configuration with a disk-queued output "durable"
// and a memory-queued output "fast" under a temporary directory and
// returns its path and the spool directory.
func spoolConfig(t *testing.T) (cfgPath, spoolDir string) {
	t.Helper()
	tmp := t.TempDir()
	cfgPath = filepath.Join(tmp, "sluice.hcl")
	src := fmt.Sprintf(`
data_dir = %[1]q

output "archive" "durable" {
  path        = %[2]q
  compression = "none"
  queue { type = "disk" }
}

output "archive" "fast" {
  path        = %[3]q
  compression = "none"
  queue { type = "memory" }
}

route "all" {
  to = [output.archive.durable, output.archive.fast]
}
`, filepath.Join(tmp, "data"), filepath.Join(tmp, "out", "durable-%Y.log"), filepath.Join(tmp, "out", "fast-%Y.log"))
	if err := os.WriteFile(cfgPath, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, filepath.Join(tmp, "data", "spool")
}

// openSpool opens the disk queue in dir (as the daemon would: it stays
// locked during the test), appends records 1..n and acknowledges 1..acked,
// and waits until the ack state is on disk.
func openSpool(t *testing.T, dir string, n, acked int) *spool.Queue {
	t.Helper()
	q, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	var recs [][]byte
	for i := 1; i <= n; i++ {
		recs = append(recs, []byte(fmt.Sprintf("event %d", i)))
	}
	if _, _, err := q.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(1, uint64(acked)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		in, err := spool.Inspect(dir)
		if err == nil && in.Floor == uint64(acked)+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ack state never reached the disk: %+v %v", in, err)
		}
	}
	return q
}

type statusOut struct {
	Outputs []map[string]any `json:"outputs"`
}

func runStatus(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"spool", "status"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestSpoolStatusConfig(t *testing.T) {
	cfg, spoolDir := spoolConfig(t)
	dir := filepath.Join(spoolDir, "durable")
	openSpool(t, dir, 10, 3) // held open, as by a running daemon

	code, out, errs := runStatus(t, "-config", cfg)
	if code != 0 || errs != "" {
		t.Fatalf("status -config = %d; stderr:\n%s", code, errs)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and 2 rows:\n%s", out)
	}
	if !regexp.MustCompile(`^OUTPUT +QUEUE +PENDING +BYTES +OLDEST +SEGMENTS +FLOOR +NEXT +DIR$`).MatchString(lines[0]) {
		t.Errorf("header %q", lines[0])
	}
	durable := regexp.MustCompile(`^durable +disk +7 +\d+B +\d+(ms|s) \(\d{4}-\d\d-\d\dT[^)]+\) +1 +4 +11 +` + regexp.QuoteMeta(dir) + `$`)
	if !durable.MatchString(lines[1]) {
		t.Errorf("disk row %q does not match %s", lines[1], durable)
	}
	fast := regexp.MustCompile(`^fast +memory +- +- +- +- +- +- +memory queue \(not persisted\)$`)
	if !fast.MatchString(lines[2]) {
		t.Errorf("memory row %q does not match %s", lines[2], fast)
	}
	// Columns are aligned: every row's DIR column starts where the header's does.
	col := strings.Index(lines[0], "DIR")
	for _, l := range lines[1:] {
		if len(l) < col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row not aligned with the header:\n%s\n%s", lines[0], l)
		}
	}

	code, out, errs = runStatus(t, "-config", cfg, "-json")
	if code != 0 || errs != "" {
		t.Fatalf("status -config -json = %d; stderr:\n%s", code, errs)
	}
	var js statusOut
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	if len(js.Outputs) != 2 {
		t.Fatalf("JSON outputs: %s", out)
	}
	d := js.Outputs[0]
	want := map[string]any{"output": "durable", "queue": "disk", "dir": dir, "pending": 7.0, "segments": 1.0,
		"ack_floor": 4.0, "next_seq": 11.0, "torn_bytes": 0.0, "corrupt_bytes": 0.0, "lost_records": 0.0}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("JSON %s = %v; want %v", k, d[k], v)
		}
	}
	if b, _ := d["bytes"].(float64); b <= 0 {
		t.Errorf("JSON bytes = %v", d["bytes"])
	}
	ts, _ := d["oldest"].(string)
	if oldest, err := time.Parse(time.RFC3339Nano, ts); err != nil || time.Since(oldest) > time.Minute {
		t.Errorf("JSON oldest = %q (%v)", ts, err)
	}
	if age, ok := d["oldest_age_seconds"].(float64); !ok || age < 0 || age > 60 {
		t.Errorf("JSON oldest_age_seconds = %v", d["oldest_age_seconds"])
	}
	m := js.Outputs[1]
	if m["output"] != "fast" || m["queue"] != "memory" || len(m) != 2 {
		t.Errorf("JSON memory output = %v; want only output and queue", m)
	}
}

func TestSpoolStatusDir(t *testing.T) {
	root := t.TempDir()
	openSpool(t, filepath.Join(root, "a"), 5, 5).Close()
	openSpool(t, filepath.Join(root, "b"), 8, 2)

	// A spool.dir: one row per subdirectory.
	code, out, errs := runStatus(t, "-dir", root, "-json")
	if code != 0 || errs != "" {
		t.Fatalf("status -dir = %d; stderr:\n%s", code, errs)
	}
	var js statusOut
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	if len(js.Outputs) != 2 || js.Outputs[0]["output"] != "a" || js.Outputs[0]["pending"] != 0.0 ||
		js.Outputs[0]["oldest"] != nil || js.Outputs[1]["output"] != "b" || js.Outputs[1]["pending"] != 6.0 {
		t.Errorf("JSON:\n%s", out)
	}

	// One queue's directory.
	code, out, errs = runStatus(t, "-dir", filepath.Join(root, "b"))
	if code != 0 || errs != "" {
		t.Fatalf("status -dir queue = %d; stderr:\n%s", code, errs)
	}
	if !regexp.MustCompile(`(?m)^b +disk +6 `).MatchString(out) || strings.Count(out, "\n") != 2 {
		t.Errorf("single queue:\n%s", out)
	}

	// Damage is reported, not an error.
	seg, _ := filepath.Glob(filepath.Join(root, "a", "*.seg"))
	f, _ := os.OpenFile(seg[len(seg)-1], os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("torn"))
	f.Close()
	code, out, errs = runStatus(t, "-dir", filepath.Join(root, "a"))
	if code != 0 || !strings.Contains(out, "a: 4B at the end of the last segment are no complete record") {
		t.Errorf("torn tail: code %d\n%s%s", code, out, errs)
	}
}

func TestSpoolStatusErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	code, out, errs := runStatus(t, "-dir", missing)
	if code != 1 || out != "" || errs != "sluice spool status: no spool at "+missing+"\n" {
		t.Errorf("missing -dir: code %d stdout %q stderr %q", code, out, errs)
	}

	// A configuration whose disk queue was never created (the daemon has not
	// run, or the working directory is not the daemon's).
	cfg, spoolDir := spoolConfig(t)
	code, out, errs = runStatus(t, "-config", cfg)
	wantErr := "sluice spool status: output durable: no spool at " + filepath.Join(spoolDir, "durable") + "\n"
	if code != 1 || errs != wantErr {
		t.Errorf("config without spool: code %d stderr %q; want 1, %q", code, errs, wantErr)
	}
	if !strings.Contains(out, "durable: error: no spool at") || !strings.Contains(out, "memory queue (not persisted)") {
		t.Errorf("config without spool: stdout:\n%s", out)
	}
	code, out, _ = runStatus(t, "-config", cfg, "-json")
	if code != 1 || !strings.Contains(out, `"error": "no spool at `) {
		t.Errorf("config without spool, JSON: code %d\n%s", code, out)
	}

	if code, _, _ := runStatus(t, "-config", "testdata/bad_plugins.hcl"); code != 1 {
		t.Errorf("bad config = %d; want 1", code)
	}
	for _, args := range [][]string{
		{"spool"},
		{"spool", "frobnicate"},
		{"spool", "status"},
		{"spool", "status", "-config", cfg, "-dir", spoolDir},
		{"spool", "status", "-dir", spoolDir, "extra"},
		{"spool", "status", "-bogus"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 || errb.Len() == 0 {
			t.Errorf("%q = %d (stderr %q); want 2 and a message", args, code, errb.String())
		}
	}
}
