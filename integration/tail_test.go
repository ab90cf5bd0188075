//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// appWriter is an application appending numbered lines "w-N" to its log
// and rotating it the way logrotate's "create" does: rename, a few more
// lines through the old descriptor, then reopen.
type appWriter struct {
	t    *testing.T
	path string

	mu   sync.Mutex
	f    *os.File
	next int
	rot  int
}

func newAppWriter(t *testing.T, path string) *appWriter {
	w := &appWriter{t: t, path: path}
	w.open()
	return w
}

func (w *appWriter) open() {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		w.t.Error(err)
		return
	}
	w.f = f
}

func (w *appWriter) write(n int) {
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

func (w *appWriter) rotate() {
	w.mu.Lock()
	w.rot++
	err := os.Rename(w.path, fmt.Sprintf("%s.%d", w.path, w.rot))
	w.mu.Unlock()
	if err != nil {
		w.t.Error(err)
		return
	}
	w.write(50) // to the renamed file: the application has not reopened yet
	w.mu.Lock()
	w.f.Close()
	w.open()
	w.mu.Unlock()
}

func (w *appWriter) written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

// archiveCounts reads the plain archive and counts each line number.
func archiveCounts(t *testing.T, path string) (map[int]int, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	counts := make(map[int]int)
	total := 0
	for l := range strings.SplitSeq(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimPrefix(l, "w-"))
		if err != nil || !strings.HasPrefix(l, "w-") {
			t.Fatalf("torn or foreign line in the archive: %q", l)
		}
		counts[n]++
		total++
	}
	return counts, total
}

// waitAll waits until the archive holds every line below n.
func waitAll(t *testing.T, d *daemon, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		counts, _ := archiveCounts(t, path)
		missing := -1
		for i := range n {
			if counts[i] == 0 {
				missing = i
				break
			}
		}
		if missing < 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("line w-%d (of the %d written before the kill) never arrived\n%s", missing, n, d.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill -9 Sluice repeatedly while it tails a log that is being written and
// rotated, with a disk queue (fsync = "always") in front of a plain
// archive: after each restart every line that was in the files at the
// kill arrives at least once. Duplicates are expected, and counted: the
// lines emitted after the last position save (saves are coalesced, every
// 250ms) are read again after the restart, while the queue, which had
// them, delivers them too. A kill before a run's first save replays the
// same lines once more.
func TestTailSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "archive", "out.log")
	cfg := fmt.Sprintf(`
admin {
  listen = "%%ADMIN%%"
}
input "tail" "app" {
  paths         = [%q]
  rotate_wait   = "300ms"
  poll_interval = "50ms"
}
output "archive" "out" {
  path        = "archive/out.log"
  compression = "none"
  format      = "raw"
  queue {
    type  = "disk"
    fsync = "always"
  }
}
route "all" {
  to = [output.archive.out]
}
`, filepath.Join(logs, "app.log"))

	w := newAppWriter(t, filepath.Join(logs, "app.log"))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	writing := func() {
		// About 15k lines/s; a rotation every ~20k lines, so no file is
		// created and rotated away entirely while Sluice is down (such a
		// file is out of any tailer's reach: documented).
		for i := 0; i < 100000; i++ { // bounded: at most 2M lines
			select {
			case <-stop:
				return
			default:
			}
			w.write(20)
			if i%1000 == 999 {
				w.rotate()
			}
			time.Sleep(time.Millisecond)
		}
	}

	const kills = 6
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 6))
	before := 0 // lines in the files at the previous kill
	prevDups := 0
	var dupsPerKill []int
	for k := range kills {
		d := startDaemon(t, dir, cfg)
		if k == 0 {
			wg.Go(writing) // Sluice follows the log from its first line
		}
		waitAll(t, d, archive, before)
		// Let it run a while; kill at a random point relative to the
		// position saves (every 250ms).
		d.waitMetric(`sluice_input_events_total{input="app"}`, 3000)
		time.Sleep(time.Duration(rnd.IntN(1000)) * time.Millisecond)
		before = w.written()
		d.cmd.Process.Kill()
		<-d.exited
		counts, lines := archiveCounts(t, archive)
		dupsPerKill = append(dupsPerKill, lines-len(counts)-prevDups)
		prevDups = lines - len(counts)
		t.Logf("kill %d: %d lines written so far, archive %d lines (%d distinct)", k+1, before, lines, len(counts))
	}
	close(stop)
	wg.Wait()
	total := w.written()
	d := startDaemon(t, dir, cfg)
	waitAll(t, d, archive, total)
	d.stop()
	counts, lines := archiveCounts(t, archive)
	for n := range counts {
		if n >= total {
			t.Errorf("line w-%d was never written", n)
		}
	}
	dups := lines - len(counts)
	t.Logf("%d lines written through %d rotations and %d kills; archive: %d lines, %d distinct, %d duplicates (%.2f%%); new duplicates per kill: %v",
		total, w.rot, kills, lines, len(counts), dups, 100*float64(dups)/float64(total), dupsPerKill)
}
