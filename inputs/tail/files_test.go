package tail

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/router/event"
)

// 1,000 files in 10 directories under one `**` pattern, some excluded by
// name, with a limit on open files below and above the number of files:
// every line of every matching file arrives once, and lines appended to
// files that had to give up their slot arrive too.
func TestManyFiles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxOpen int
	}{
		{"all_open", 1024},
		{"max_open_files_100", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			const files, lines = 1000, 20
			var paths []string
			for i := range files {
				sub := filepath.Join(dir, fmt.Sprintf("d%d", i%10), "logs")
				if err := os.MkdirAll(sub, 0o755); err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(sub, fmt.Sprintf("f%04d.log", i))
				appendLines(t, p, fmt.Sprintf("f%04d", i), 0, lines)
				paths = append(paths, p)
				// Decoys: excluded or not matching.
				appendLines(t, filepath.Join(sub, fmt.Sprintf("f%04d.log.1", i)), "decoy", 0, 1)
			}
			appendLines(t, filepath.Join(dir, "d0", "skip-me.log"), "decoy", 0, 1)
			cfg := testConfig(filepath.Join(dir, "**", "*.log"))
			cfg.Exclude = []string{filepath.Join(dir, "**", "skip-*")}
			cfg.MaxOpenFiles = tc.maxOpen
			rec := &recorder{}
			r := start(t, cfg, rec, t.TempDir())
			rec.wait(t, files*lines)
			// More lines to every file, including those closed to make
			// room for others.
			for i, p := range paths {
				appendLines(t, p, fmt.Sprintf("f%04d", i), lines, lines+5)
			}
			rec.wait(t, files*(lines+5))
			r.stop()
			byFile := make(map[string][]string)
			for _, ev := range rec.events() {
				byFile[ev.Origin] = append(byFile[ev.Origin], ev.Message)
			}
			if len(byFile) != files {
				t.Fatalf("events from %d files; want %d", len(byFile), files)
			}
			for i, p := range paths {
				exactlyOnce(t, seqCount(t, byFile[p], fmt.Sprintf("f%04d", i)), lines+5)
			}
		})
	}
}

// A 10 MiB line: truncated to max_line_bytes (and counted), or delivered
// whole when the limit allows it; the lines around it are intact either
// way, and memory stays bounded by the limit.
func TestLongLine(t *testing.T) {
	const long = 10 << 20
	for _, tc := range []struct {
		name    string
		limit   string
		wantLen int
		over    float64
	}{
		{"truncated", "64KiB", 64 << 10, 1},
		{"whole", "16MiB", long, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "big.log")
			line := bytes.Repeat([]byte("0123456789abcdef"), long/16)
			content := append([]byte("before\n"), line...)
			content = append(content, "\nafter\n"...)
			if err := os.WriteFile(log, content, 0o644); err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(log)
			cfg.MaxLineBytes = tc.limit
			rec := &recorder{}
			r := start(t, cfg, rec, t.TempDir())
			evs := rec.wait(t, 3)
			r.stop()
			if len(evs) != 3 || evs[0].Message != "before" || evs[2].Message != "after" {
				t.Fatalf("got %d events", len(evs))
			}
			if got := evs[1].Raw; len(got) != tc.wantLen || !bytes.Equal(got, line[:tc.wantLen]) {
				t.Errorf("long line: %d bytes; want the first %d", len(got), tc.wantLen)
			}
			if got := r.dropped("oversize"); got != tc.over {
				t.Errorf("oversize = %v; want %v", got, tc.over)
			}
			pf := readPositions(t, r.state)
			if len(pf.Files) != 1 || pf.Files[0].Offset != int64(len(content)) {
				t.Errorf("positions = %+v; want offset %d", pf.Files, len(content))
			}
		})
	}
}

// A binary file (random bytes: NULs, invalid UTF-8, CRs) is delivered
// byte for byte: each event is what lies between two LFs, less a CR just
// before the LF.
func TestBinaryFile(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "blob.bin")
	rnd := rand.New(rand.NewPCG(1, 2))
	content := make([]byte, 4<<20)
	for i := range content {
		content[i] = byte(rnd.Uint32())
	}
	content[len(content)-1] = '\n'
	if err := os.WriteFile(log, content, 0o644); err != nil {
		t.Fatal(err)
	}
	want := bytes.Split(content[:len(content)-1], []byte("\n"))
	cfg := testConfig(log)
	cfg.MaxLineBytes = "1MiB"
	rec := &recorder{}
	r := start(t, cfg, rec, t.TempDir())
	evs := rec.wait(t, len(want))
	r.stop()
	if len(evs) != len(want) {
		t.Fatalf("%d events; want %d", len(evs), len(want))
	}
	for i, ev := range evs {
		w := bytes.TrimSuffix(want[i], []byte("\r"))
		if !bytes.Equal(ev.Raw, w) || ev.Message != string(w) {
			t.Fatalf("line %d: %q; want %q", i, ev.Raw, w)
		}
	}
}

// start_at = "end" skips what files found at startup already hold (up to
// their last complete line), but not files that appear later, nor files
// with a saved position.
func TestStartAtEnd(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	old := filepath.Join(dir, "old.log")
	appendLines(t, old, "old", 0, 10)
	if f, err := os.OpenFile(old, os.O_WRONLY|os.O_APPEND, 0); err == nil {
		f.WriteString("old-10 is not complete yet ")
		f.Close()
	}
	cfg := testConfig(filepath.Join(dir, "*.log"))
	cfg.StartAt = "end"
	rec := &recorder{}
	r := start(t, cfg, rec, state)
	appendLines(t, old, "old", 11, 12) // completes the partial line: "old-10 is not complete yet old-11"
	appendLines(t, filepath.Join(dir, "new.log"), "new", 0, 5)
	evs := rec.wait(t, 6)
	r.stop()
	got := make(map[string]bool)
	for _, ev := range evs {
		got[ev.Message] = true
	}
	if len(evs) != 6 || !got["old-10 is not complete yet old-11"] || !got["new-0"] || !got["new-4"] {
		t.Errorf("events = %q", rec.messages())
	}
	// A restart resumes at the saved positions, whatever start_at says.
	appendLines(t, old, "old", 12, 14)
	r = start(t, cfg, rec, state)
	rec.wait(t, 8)
	r.stop()
	if m := rec.messages(); m[6] != "old-12" || m[7] != "old-13" || len(m) != 8 {
		t.Errorf("after restart: %q", m[6:])
	}
}

// A saved position whose file's inode was reused by a new file (same
// device and inode, other first bytes) is not applied: the new file is
// read from its start.
func TestInodeReuseNotMistaken(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLines(t, log, "new", 0, 10)
	fi, err := os.Stat(log)
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := statID(fi)
	// The position a previous file with this inode left: 30 bytes read.
	old := []byte("old-0\nold-1\nold-2\nold-3\nold-4\n")
	pf := positionsFile{Version: positionsVersion, Files: []position{{
		Path: log, Dev: id.Dev, Ino: id.Ino, FPLen: len(old), FPCRC: crc(0, old), Offset: int64(len(old)),
	}}}
	b, _ := json.Marshal(pf)
	if err := os.WriteFile(filepath.Join(state, positionsName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	r := start(t, testConfig(log), rec, state)
	rec.wait(t, 10)
	r.stop()
	exactlyOnce(t, seqCount(t, rec.messages(), "new"), 10)

	// The same file with its true position resumes there.
	appendLines(t, log, "new", 10, 12)
	r = start(t, testConfig(log), rec, state)
	rec.wait(t, 12)
	r.stop()
	exactlyOnce(t, seqCount(t, rec.messages(), "new"), 12)
}

// A pattern whose fixed part runs through a regular file (ENOTDIR), and a
// file that cannot be opened: logged, counted, retried; the input keeps
// running and reads the files once the path is fixed.
func TestPathErrorsRetried(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "logs")
	if err := os.WriteFile(blocker, []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(filepath.Join(blocker, "app", "*.log"))
	rec := &recorder{}
	r := start(t, cfg, rec, t.TempDir())
	waitFor(t, "file_error to be counted", func() bool { return r.dropped("file_error") >= 2 })
	if !strings.Contains(r.logs.String(), "not a directory") {
		t.Errorf("the error was not logged:\n%s", r.logs.String())
	}
	// Fix the path: the file is found by a later scan.
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(blocker, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	appendLines(t, filepath.Join(blocker, "app", "x.log"), "x", 0, 3)
	rec.wait(t, 3)
	r.stop()
	exactlyOnce(t, seqCount(t, rec.messages(), "x"), 3)
}

// Files that vanished while Sluice was stopped are forgotten.
func TestVanishedFilesForgotten(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	appendLines(t, a, "a", 0, 3)
	appendLines(t, b, "b", 0, 3)
	cfg := testConfig(filepath.Join(dir, "*.log"))
	rec := &recorder{}
	r := start(t, cfg, rec, state)
	rec.wait(t, 6)
	r.stop()
	if pf := readPositions(t, state); len(pf.Files) != 2 {
		t.Fatalf("positions = %+v", pf.Files)
	}
	if err := os.Remove(b); err != nil {
		t.Fatal(err)
	}
	r = start(t, cfg, rec, state)
	waitFor(t, "b to be forgotten", func() bool { return len(r.in.reg.all()) == 1 })
	r.stop()
	if pf := readPositions(t, state); len(pf.Files) != 1 || pf.Files[0].Path != a {
		t.Errorf("positions = %+v; want only %s", pf.Files, a)
	}
}

// Emit failing for a reason other than shutdown (an output's queue is
// broken): counted, and the batch is tried again; the position does not
// advance past lines no Emit took.
func TestEmitErrorRetried(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLines(t, log, "w", 0, 10)
	rec := &recorder{failNext: 2}
	r := start(t, testConfig(log), rec, t.TempDir())
	rec.wait(t, 10)
	r.stop()
	exactlyOnce(t, seqCount(t, rec.messages(), "w"), 10)
	if got := r.dropped("emit_error"); got != 20 {
		t.Errorf("emit_error = %v; want 20 (two failed attempts of 10 events)", got)
	}
}

// Multiline records (a Java stack trace): a record is emitted when the
// next one starts, or after multiline.timeout; the saved position never
// passes the start of a record not yet emitted, so a restart in the middle
// of one delivers it once, whole.
func TestMultilineRecords(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	log := filepath.Join(dir, "app.log")
	rec0 := "2026-11-22 10:00:00 INFO starting"
	rec1 := "2026-11-22 10:00:01 ERROR request failed\njava.lang.IllegalStateException: boom\n\tat com.example.A.run(A.java:10)"
	if err := os.WriteFile(log, []byte(rec0+"\n"+rec1+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(log)
	cfg.Multiline = &MultilineConfig{Start: `^\d{4}-\d\d-\d\d `, Timeout: "1h"}
	rec := &recorder{}
	r := start(t, cfg, rec, state)
	rec.wait(t, 1) // rec0 ended where rec1 starts; rec1 may continue
	r.stop()
	if pf := readPositions(t, state); len(pf.Files) != 1 || pf.Files[0].Offset != int64(len(rec0)+1) {
		t.Fatalf("positions = %+v; want the start of the unfinished record, %d", pf.Files, len(rec0)+1)
	}

	more := "\tat com.example.B.call(B.java:20)"
	rec2 := "2026-11-22 10:00:02 INFO recovered"
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(more + "\n" + rec2 + "\n")
	f.Close()
	cfg.Multiline.Timeout = "50ms" // now the last record is flushed when the file goes quiet
	r = start(t, cfg, rec, state)
	rec.wait(t, 3)
	r.stop()
	want := []string{rec0, rec1 + "\n" + more, rec2}
	if got := rec.messages(); !slices.Equal(got, want) {
		t.Errorf("records:\n%q\nwant\n%q", got, want)
	}
}

// A file's position is on disk before the first Emit of its lines: a
// crash right after that Emit, before any periodic save, must not forget
// the file (rotated meanwhile, its unread lines would never be found).
func TestPositionSavedBeforeFirstEmit(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	for _, n := range []string{"a.log", "b.log"} {
		appendLines(t, filepath.Join(dir, n), "x", 0, 3)
	}
	var checked atomic.Int32
	var bad atomic.Value
	sink := inputs.SinkFunc(func(_ context.Context, evs []*event.Event) error {
		var pf positionsFile
		b, err := os.ReadFile(filepath.Join(state, positionsName))
		if err == nil {
			err = json.Unmarshal(b, &pf)
		}
		for _, ev := range evs {
			found := false
			for _, p := range pf.Files {
				found = found || p.Path == ev.Origin
			}
			if !found {
				bad.Store(fmt.Sprintf("emitting %s before its position was saved (%v, %s)", ev.Origin, err, b))
			}
		}
		checked.Add(int32(len(evs)))
		return nil
	})
	cfg := testConfig(filepath.Join(dir, "*.log"))
	r := start(t, cfg, sink, state)
	appendLines(t, filepath.Join(dir, "c.log"), "x", 0, 3) // found by a later scan
	waitFor(t, "9 events", func() bool { return checked.Load() >= 9 })
	r.stop()
	if msg := bad.Load(); msg != nil {
		t.Error(msg)
	}
}
