package tail

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Stop and start the input many times while a writer appends: the
// delivered stream equals the file, each line once and in order. Either
// sink behaviour at shutdown is covered: accepting what the input flushes
// (the router does while its queues have room) or refusing it (positions
// must then not advance past it).
func TestRestartManyTimes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refuse bool
		ml     bool
	}{
		{"sink_accepts_at_shutdown", false, false},
		{"sink_refuses_at_shutdown", true, false},
		{"multiline_sink_refuses_at_shutdown", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, state := t.TempDir(), t.TempDir()
			log := filepath.Join(dir, "app.log")
			w := newLogWriter(t, log)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for range 20000 { // bounded: at most 200k lines
					select {
					case <-stop:
						return
					default:
					}
					w.write(10)
					time.Sleep(200 * time.Microsecond)
				}
			})
			cfg := testConfig(log)
			if tc.ml {
				// Every line starts a record: records are lines, but the
				// position may only pass a record once the next one began.
				cfg.Multiline = &MultilineConfig{Start: `^w-`, Timeout: "50ms"}
			}
			rec := &recorder{refuseOnDone: tc.refuse}
			const restarts = 25
			for range restarts {
				r := start(t, cfg, rec, state)
				before := rec.count()
				waitFor(t, "progress", func() bool { return rec.count() >= before+50 })
				r.stop()
			}
			close(stop)
			wg.Wait()
			w.close()
			total := w.written()
			r := start(t, cfg, rec, state)
			rec.wait(t, total)
			r.stop()
			msgs := rec.messages()
			exactlyOnce(t, seqCount(t, msgs, "w"), total)
			for i, m := range msgs {
				if m != fmt.Sprintf("w-%d", i) {
					t.Fatalf("line %d is %q: out of order", i, m)
				}
			}
			t.Logf("%d lines over %d restarts, each once and in order", total, restarts+1)
		})
	}
}

// Sluice stopped in the middle of a rename rotation: the old file, renamed
// to a name no pattern matches, got more lines while Sluice was down and
// a new file was created. On start the old file is found in its directory
// by identity and read from the saved position; the new one from its
// start. Then the old file's position is forgotten.
func TestRestartDuringRotation(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLines(t, log, "w", 0, 100)
	rec := &recorder{}
	cfg := testConfig(log)
	r := start(t, cfg, rec, state)
	rec.wait(t, 100)
	r.stop()

	old := log + ".1"
	if err := os.Rename(log, old); err != nil {
		t.Fatal(err)
	}
	appendLines(t, old, "w", 100, 150) // the writer had not reopened yet
	appendLines(t, log, "w", 150, 200)

	r = start(t, cfg, rec, state)
	rec.wait(t, 200)
	waitFor(t, "the old file's position to be forgotten", func() bool {
		for _, p := range r.in.reg.all() {
			if p.Path == old {
				return false
			}
		}
		return true
	})
	r.stop()
	exactlyOnce(t, seqCount(t, rec.messages(), "w"), 200)
	pf := readPositions(t, state)
	if len(pf.Files) != 1 || pf.Files[0].Path != log || pf.Files[0].Offset != 50*int64(len("w-150\n")) {
		t.Errorf("positions = %+v; want only %s at its end", pf.Files, log)
	}
}

// A file deleted while it is followed is drained (lines appended through
// the writer's descriptor after the unlink arrive too), closed after
// rotate_wait, and its position forgotten.
func TestDeletedFileDrained(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	log := filepath.Join(dir, "app.log")
	w := newLogWriter(t, log)
	w.write(100)
	rec := &recorder{}
	r := start(t, testConfig(log), rec, state)
	rec.wait(t, 100)
	if err := os.Remove(log); err != nil {
		t.Fatal(err)
	}
	w.write(100)
	w.close()
	rec.wait(t, 200)
	waitFor(t, "the file to be closed", func() bool { return len(r.in.reg.all()) == 0 })
	r.stop()
	exactlyOnce(t, seqCount(t, rec.messages(), "w"), 200)
	if pf := readPositions(t, state); len(pf.Files) != 0 {
		t.Errorf("positions = %+v; want none", pf.Files)
	}
}

// Copytruncate while Sluice is stopped: on start the saved position no
// longer fits the file (smaller, other first bytes); the unread rest of
// the old content is read from logrotate's copy, then the file from its
// start. Nothing lost (no writes between copy and truncate here), nothing
// duplicated.
func TestCopytruncateWhileStopped(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLines(t, log, "w", 0, 100)
	rec := &recorder{}
	cfg := testConfig(log)
	r := start(t, cfg, rec, state)
	rec.wait(t, 100)
	r.stop()

	appendLines(t, log, "w", 100, 150) // written while Sluice is down
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log+".1", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	appendLines(t, log, "w", 150, 400) // longer than the old offset

	r = start(t, cfg, rec, state)
	rec.wait(t, 400)
	r.stop()
	exactlyOnce(t, seqCount(t, rec.messages(), "w"), 400)
	if got := r.dropped("file_truncated"); got != 1 {
		t.Errorf("file_truncated = %v; want 1", got)
	}
	if pf := readPositions(t, state); len(pf.Files) != 1 || pf.Files[0].Path != log {
		t.Errorf("positions = %+v; want only %s (the copy forgotten once read)", pf.Files, log)
	}
}
