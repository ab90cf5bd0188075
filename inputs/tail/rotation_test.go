package tail

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/router/event"
)

// logWriter is an application writing numbered lines "w-N" to a log file
// through a file descriptor it keeps until told to reopen its log.
type logWriter struct {
	t    testing.TB
	path string
	mu   sync.Mutex // held while writing a chunk and while swapping f
	f    *os.File
	next int
}

func newLogWriter(t testing.TB, path string) *logWriter {
	w := &logWriter{t: t, path: path}
	w.reopen()
	return w
}

// reopen closes the current descriptor and opens path again (creating it).
func (w *logWriter) reopen() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.f.Close()
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		w.t.Error(err)
		return
	}
	w.f = f
}

// write appends n lines in one write(2).
func (w *logWriter) write(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b bytes.Buffer
	for range n {
		fmt.Fprintf(&b, "w-%d\n", w.next)
		w.next++
	}
	if _, err := w.f.Write(b.Bytes()); err != nil {
		w.t.Error(err)
	}
}

func (w *logWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.f.Close()
}

func (w *logWriter) written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

// Rename rotation (logrotate "create") while the writer keeps writing and
// the pipeline is slower than the writer: the old file is read to its end
// (including lines the writer appends after the rename, before it
// reopens), then the new one. No line lost, none duplicated.
func TestRenameRotationSlowPipeline(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	w := newLogWriter(t, log)
	rec := &recorder{delay: 15 * time.Millisecond}
	r := start(t, testConfig(log), rec, t.TempDir())

	const rounds, perRound, afterRename = 6, 3000, 200
	maxLag := 0
	for round := range rounds {
		for range perRound / 100 {
			w.write(100)
			time.Sleep(time.Millisecond)
		}
		maxLag = max(maxLag, w.written()-rec.count())
		// logrotate renames; the application writes a while to the old
		// descriptor, then reopens its log.
		if err := os.Rename(log, fmt.Sprintf("%s.%d", log, round+1)); err != nil {
			t.Fatal(err)
		}
		w.write(afterRename / 2)
		time.Sleep(2 * time.Millisecond)
		w.write(afterRename / 2)
		w.reopen()
	}
	w.write(100)
	w.close()
	total := w.written()
	rec.wait(t, total)
	r.stop()
	exactlyOnce(t, seqCount(t, rec.messages(), "w"), total)
	if n := r.dropped("file_truncated"); n != 0 {
		t.Errorf("file_truncated = %v; want 0", n)
	}
	t.Logf("%d lines through %d rename rotations, %d Emits; the pipeline lagged up to %d lines at a rotation", total, rounds, rec.emits, maxLag)
	if maxLag < 256 {
		t.Errorf("the pipeline lagged at most %d lines at a rotation: not slower than the writer", maxLag)
	}
}

// Copytruncate while the writer keeps writing and the pipeline lags far
// behind: logrotate copies the file, then truncates it; lines written
// between the copy and the truncation are in neither (the inherent
// window). No duplicates; with the copy left next to the file, nothing is
// lost outside that window (the unread rest is read from the copy);
// without it (compressed at once) everything unread at the truncation is
// lost, and measured.
func TestCopytruncateSlowPipeline(t *testing.T) {
	for _, tc := range []struct {
		name     string
		keepCopy bool
	}{
		{"copy_kept", true},
		{"copy_removed", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "app.log")
			w := newLogWriter(t, log)
			rec := &recorder{delay: 15 * time.Millisecond}
			r := start(t, testConfig(log), rec, t.TempDir())

			const rounds, perRound = 5, 3000
			var copies []string
			genFirst := 0 // lines from this one on were written after the last truncation
			for round := range rounds {
				// The reader must have seen the beginning of this
				// generation of the file (it lags behind inside it):
				// a generation written and truncated away before the
				// reader got to it exists only in a copy it cannot
				// tell from any other file (documented).
				waitFor(t, "the new generation's first lines", func() bool {
					for _, m := range rec.messages() {
						var n int
						if _, err := fmt.Sscanf(m, "w-%d", &n); err == nil && n >= genFirst {
							return true
						}
					}
					return genFirst == 0
				})
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Go(func() { // the application, writing during the rotation
					for {
						select {
						case <-stop:
							return
						default:
						}
						w.write(10)
						time.Sleep(100 * time.Microsecond)
					}
				})
				for range perRound / 100 {
					w.write(100)
					time.Sleep(time.Millisecond)
				}
				// logrotate copytruncate: copy, then truncate in place.
				b, err := os.ReadFile(log)
				if err != nil {
					t.Fatal(err)
				}
				cp := fmt.Sprintf("%s.%d", log, round+1)
				if err := os.WriteFile(cp, b, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(log, 0); err != nil {
					t.Fatal(err)
				}
				genFirst = w.written()
				close(stop)
				wg.Wait()
				if tc.keepCopy {
					copies = append(copies, cp)
				} else {
					keep := append([]byte(nil), b...) // the test still needs the copy's lines
					os.Remove(cp)
					copies = append(copies, string(keep))
				}
				w.write(100)
			}
			w.close()
			total := w.written()

			// Lines that survive somewhere: the copies and the live file.
			survived := make(map[string]bool)
			var onDisk []string
			for _, c := range copies {
				content := c
				if tc.keepCopy {
					b, err := os.ReadFile(c)
					if err != nil {
						t.Fatal(err)
					}
					content = string(b)
				}
				onDisk = append(onDisk, content)
			}
			live, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			onDisk = append(onDisk, string(live))
			for _, c := range onDisk {
				for l := range strings.SplitSeq(strings.TrimSuffix(c, "\n"), "\n") {
					if l != "" {
						survived[l] = true
					}
				}
			}
			inherent := total - len(survived)

			// Everything on disk that the input can still reach arrives;
			// wait for the live file's last line, then for the pipeline to
			// go quiet.
			last := fmt.Sprintf("w-%d", total-1)
			waitFor(t, "the last line", func() bool {
				m := rec.messages()
				return len(m) > 0 && m[len(m)-1] == last
			})
			r.stop()
			seen := seqCount(t, rec.messages(), "w")
			var dups, lost, lostOutside int
			for i := range total {
				l := fmt.Sprintf("w-%d", i)
				switch c := seen[i]; {
				case c > 1:
					dups++
				case c == 0:
					lost++
					if survived[l] {
						lostOutside++
					}
				}
			}
			t.Logf("%d lines, %d truncations: %d in the inherent window (written between copy and truncate), %d lost, %d of them outside that window, %d duplicated",
				total, rounds, inherent, lost, lostOutside, dups)
			if dups > 0 {
				t.Errorf("%d lines duplicated", dups)
			}
			if got := r.dropped("file_truncated"); got < rounds {
				t.Errorf("file_truncated = %v; want ≥ %d", got, rounds)
			}
			if tc.keepCopy && lostOutside > 0 {
				t.Errorf("%d lines lost that were in the copy or the file", lostOutside)
			}
			if !tc.keepCopy && lostOutside == 0 {
				// The pipeline lags by thousands of lines at each
				// truncation: without the copy, some must be lost, or
				// the test did not exercise what it claims to.
				t.Errorf("no loss without the copy: the reader was not behind at the truncation")
			}
		})
	}
}

// Lines an application writes to its old log after the rename, long after
// the input noticed the rotation and scanned again, still arrive: the old
// file is read until it has been quiet for rotate_wait.
func TestRenameRotationLateWrites(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	w := newLogWriter(t, log)
	w.write(10)
	old, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0) // the application's descriptor to the old file
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	cfg := testConfig(log)
	cfg.RotateWait = "1m" // the test ends long before; it stops the input
	rec := &recorder{}
	r := start(t, cfg, rec, t.TempDir())
	rec.wait(t, 10)
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rotation to be noticed", func() bool { return strings.Contains(r.logs.String(), "file rotated or deleted") })
	w.reopen()
	w.write(10) // to the new file
	rec.wait(t, 20)
	// Two more scans: the old file, unmatched now, would have been
	// examined as an orphan (and forgotten, having no unread bytes) if
	// its reader had closed it.
	n := r.in.scans.Load()
	waitFor(t, "two scans", func() bool { return r.in.scans.Load() >= n+2 })
	if _, err := old.WriteString("late-0\nlate-1\n"); err != nil {
		t.Fatal(err)
	}
	w.close()
	rec.wait(t, 22)
	r.stop()
	msgs := rec.messages()
	exactlyOnce(t, seqCount(t, msgs[:20], "w"), 20)
	if !slices.Equal(msgs[20:], []string{"late-0", "late-1"}) {
		t.Errorf("late lines: %q", msgs[20:])
	}
}

// A truncation noticed in the middle of reading, not at the end of the
// file: the reader is blocked behind a slow Emit with unread bytes left
// when the file is truncated and rewritten longer than the old read
// offset. What it reads next is the new content at the old offset: it
// must recognise it by the fingerprint, not deliver it, and read the new
// content from its start: no garbage, no duplicates.
func TestTruncationNoticedMidFile(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLines(t, log, "a", 0, 1000) // ~6 KB
	cfg := testConfig(log)
	in, err := New(cfg, inputs.Env{Name: "test", StateDir: t.TempDir(), Metrics: inputs.NewDiscardMetrics(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	tin := in.(*Input)
	tin.s.readChunk, tin.s.maxBatch = 256, 10 // small reads and batches: the reader stops mid-file

	gate := make(chan struct{})
	entered := make(chan struct{}, 1)
	rec := &recorder{}
	sink := inputs.SinkFunc(func(ctx context.Context, evs []*event.Event) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
		return rec.Emit(ctx, evs)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tin.Run(ctx, sink) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-entered // the first batch is in Emit; the reader is a batch or two ahead, far from the end
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	appendLines(t, log, "b", 0, 2000) // ~12 KB: longer than anything read so far
	close(gate)
	waitFor(t, "the new content's last line", func() bool {
		m := rec.messages()
		return len(m) > 0 && m[len(m)-1] == "b-1999"
	})
	var a, b []string
	for _, m := range rec.messages() {
		switch {
		case strings.HasPrefix(m, "a-"):
			a = append(a, m)
		case strings.HasPrefix(m, "b-"):
			b = append(b, m)
		default:
			t.Fatalf("garbage line %q", m)
		}
	}
	exactlyOnce(t, seqCount(t, b, "b"), 2000)
	// The old content: a run from its start (the rest was truncated away
	// before it was read, and there is no copy).
	for i, m := range a {
		if m != fmt.Sprintf("a-%d", i) {
			t.Fatalf("old content line %d is %q", i, m)
		}
	}
	if len(a) >= 1000 {
		t.Fatalf("all %d old lines were read before the truncation: the test did not truncate mid-file", len(a))
	}
}
