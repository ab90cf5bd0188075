package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/outputs/format"
	"github.com/sluicelog/sluice/router/event"
)

var hour0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// mkEvent returns an event at hour0+offset whose Raw is a 5424 line.
func mkEvent(stream string, offset time.Duration, msg string) *event.Event {
	ev := &event.Event{
		Time: hour0.Add(offset), Received: hour0.Add(offset),
		Input: "in", Stream: stream, Facility: 1, Severity: 6, Host: "h", App: "app", Message: msg,
	}
	ev.Raw = format.RFC5424.Append(nil, ev)
	return ev
}

type testOutput struct {
	*output
	t        *testing.T
	dir      string // where the archive files go
	stateDir string
}

// newTest builds an output writing under a temporary directory; tmpl is
// relative to it.
func newTest(t *testing.T, tmpl string, mod func(*Config)) *testOutput {
	t.Helper()
	dir := t.TempDir()
	return newTestIn(t, dir, filepath.Join(dir, "state"), tmpl, mod)
}

func newTestIn(t *testing.T, dir, stateDir, tmpl string, mod func(*Config)) *testOutput {
	t.Helper()
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(dir, tmpl)
	if mod != nil {
		mod(cfg)
	}
	out, err := New(cfg, outputs.Env{Name: "test", StateDir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	o := out.(*output)
	if _, ok := out.(outputs.Opener); !ok {
		t.Fatal("not an Opener")
	}
	if err := o.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	to := &testOutput{output: o, t: t, dir: dir, stateDir: stateDir}
	t.Cleanup(func() { o.Close() })
	return to
}

func (to *testOutput) write(evs ...*event.Event) {
	to.t.Helper()
	if err := to.Write(context.Background(), evs); err != nil {
		to.t.Fatal(err)
	}
}

// crash abandons the output like kill -9: descriptors closed, no fsync, no
// state update.
func (to *testOutput) crash() {
	to.mu.Lock()
	to.closed = true
	stop := to.stop
	to.mu.Unlock()
	if stop != nil {
		close(stop)
		<-to.done
	}
	for _, f := range to.files {
		if f.f != nil {
			f.f.Close()
		}
	}
}

func (to *testOutput) setNow(now func() time.Time) {
	to.mu.Lock()
	defer to.mu.Unlock()
	to.now = now
}

func (to *testOutput) openCount() int {
	to.mu.Lock()
	defer to.mu.Unlock()
	return to.open
}

// lines returns the Raw lines of evs, each with "\n".
func lines(evs ...*event.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.Write(ev.Raw)
		b.WriteByte('\n')
	}
	return b.String()
}

// readArchive returns the content of a file, decompressed if it is gzip,
// failing the test if it is not cleanly readable.
func readArchive(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(filepath.Base(path), ".gz") {
		return string(b)
	}
	if len(b) == 0 {
		return ""
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(out)
}

// systemGzip checks path with /bin/gzip -t and returns `gzip -dc` output.
func systemGzip(t *testing.T, path string) string {
	t.Helper()
	gz, err := exec.LookPath("gzip")
	if err != nil {
		t.Skip("no gzip binary")
	}
	if out, err := exec.Command(gz, "-t", path).CombinedOutput(); err != nil {
		t.Fatalf("gzip -t %s: %v\n%s", path, err, out)
	}
	out, err := exec.Command(gz, "-dc", path).Output()
	if err != nil {
		t.Fatalf("gzip -dc %s: %v", path, err)
	}
	return string(out)
}

// listFiles returns the regular files under dir (relative), excluding the
// state directory.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "state" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func readState(t *testing.T, stateDir string) []stateEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, stateFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.Files
}

func TestWriteAcrossHoursAndStreams(t *testing.T) {
	for _, comp := range []string{"gzip", "none"} {
		t.Run(comp, func(t *testing.T) {
			ext := ".log.gz"
			if comp == "none" {
				ext = ".log"
			}
			to := newTest(t, "{stream}/%Y/%m/%d/%H"+ext, func(c *Config) { c.Compression = comp })
			a1 := mkEvent("a", 1*time.Minute, "a1")
			b1 := mkEvent("b", 2*time.Minute, "b1")
			a2 := mkEvent("a", 61*time.Minute, "a2 next hour")
			a3 := mkEvent("a", 3*time.Minute, "a3 late, previous hour")
			b2 := mkEvent("b", 125*time.Minute, "b2")
			a4 := mkEvent("a", 4*time.Minute, "a4")
			to.write(a1, b1, a2)
			to.write(a3, b2)
			to.write(a4)
			if err := to.Close(); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{
				"a/2026/11/22/10" + ext: lines(a1, a3, a4),
				"a/2026/11/22/11" + ext: lines(a2),
				"b/2026/11/22/10" + ext: lines(b1),
				"b/2026/11/22/12" + ext: lines(b2),
			}
			got := listFiles(t, to.dir)
			if !slices.Equal(got, slices.Sorted(mapsKeys(want))) {
				t.Fatalf("files %v, want %v", got, slices.Sorted(mapsKeys(want)))
			}
			for name, content := range want {
				p := filepath.Join(to.dir, name)
				if got := readArchive(t, p); got != content {
					t.Errorf("%s:\n%q\nwant\n%q", name, got, content)
				}
				if comp == "gzip" {
					if got := systemGzip(t, p); got != content {
						t.Errorf("zcat %s:\n%q\nwant\n%q", name, got, content)
					}
				}
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != 0o640&^umask() {
					t.Errorf("%s mode %v", name, st.Mode())
				}
			}
			if st := readState(t, to.stateDir); len(st) != 0 {
				t.Errorf("state after Close lists %v", st)
			}
		})
	}
}

func umask() os.FileMode {
	dir, err := os.MkdirTemp("", "umask")
	if err != nil {
		return 0
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, nil, 0o777); err != nil {
		return 0
	}
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return 0o777 &^ st.Mode().Perm()
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestOneMemberPerWrite(t *testing.T) {
	to := newTest(t, "x.log.gz", nil)
	var all []*event.Event
	for i := range 3 {
		evs := []*event.Event{mkEvent("s", 0, fmt.Sprint("m", i)), mkEvent("s", 0, fmt.Sprint("n", i))}
		all = append(all, evs...)
		to.write(evs...)
	}
	path := filepath.Join(to.dir, "x.log.gz")
	b, _ := os.ReadFile(path)
	// Count members by reading them one at a time.
	br := bytes.NewReader(b)
	var zr gzip.Reader
	members := 0
	for {
		if err := zr.Reset(br); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		zr.Multistream(false)
		if _, err := io.Copy(io.Discard, &zr); err != nil {
			t.Fatal(err)
		}
		members++
	}
	if members != 3 {
		t.Errorf("%d members, want 3", members)
	}
	if got := readArchive(t, path); got != lines(all...) {
		t.Errorf("content %q", got)
	}
}

func TestFormats(t *testing.T) {
	ev := mkEvent("s", 0, "hello")
	for _, f := range []format.Format{format.Raw, format.RFC5424, format.JSON} {
		to := newTest(t, "x.log", func(c *Config) { c.Compression, c.Format = "none", f.String() })
		to.write(ev, ev)
		want := string(f.Append(nil, ev)) + "\n"
		if got := readArchive(t, filepath.Join(to.dir, "x.log")); got != want+want {
			t.Errorf("%v: %q, want %q", f, got, want+want)
		}
	}
}

func TestParallelMembers(t *testing.T) {
	to := newTest(t, "x.log.gz", nil)
	var evs []*event.Event
	for i := range 8000 { // ~2 MiB: split across cores when GOMAXPROCS > 1
		evs = append(evs, mkEvent("s", 0, fmt.Sprintf("%06d %s", i, strings.Repeat("x", 200))))
	}
	to.write(evs...)
	to.write(evs[:10]...)
	to.Close()
	p := filepath.Join(to.dir, "x.log.gz")
	want := lines(evs...) + lines(evs[:10]...)
	if got := readArchive(t, p); got != want {
		t.Fatalf("content differs: %d bytes, want %d", len(got), len(want))
	}
	if got := systemGzip(t, p); got != want {
		t.Fatalf("zcat content differs")
	}
}

func TestSplitLines(t *testing.T) {
	src := []byte("aaaa\nbbbb\ncccc\ndddd\neeee")
	for n := 1; n <= 6; n++ {
		parts := splitLines(nil, src, n)
		if got := bytes.Join(parts, nil); !bytes.Equal(got, src) {
			t.Fatalf("n=%d: parts %q do not add up", n, parts)
		}
		for _, p := range parts[:len(parts)-1] {
			if p[len(p)-1] != '\n' {
				t.Errorf("n=%d: part %q does not end a line", n, p)
			}
		}
	}
}

func TestRotationAtMaxFileSize(t *testing.T) {
	for _, comp := range []string{"gzip", "none"} {
		t.Run(comp, func(t *testing.T) {
			name := map[string]string{"gzip": "10.log.gz", "none": "10.log"}[comp]
			tmpl := strings.Replace(name, "10", "%H", 1)
			to := newTest(t, tmpl, func(c *Config) { c.Compression, c.MaxFileSize = comp, "300B" })
			var all []*event.Event
			for i := range 10 {
				ev := mkEvent("s", 0, fmt.Sprintf("message %d %s", i, strings.Repeat("z", 100)))
				all = append(all, ev)
				to.write(ev)
			}
			to.Close()
			files := listFiles(t, to.dir)
			if len(files) < 3 {
				t.Fatalf("files %v: want rotation", files)
			}
			var got strings.Builder
			for n := range len(files) {
				name := partPath(name, n)
				if !slices.Contains(files, name) {
					t.Fatalf("files %v: missing part %s", files, name)
				}
				st, _ := os.Stat(filepath.Join(to.dir, name))
				if n < len(files)-1 && st.Size() < 300 {
					t.Errorf("%s rotated at %d bytes", name, st.Size())
				}
				got.WriteString(readArchive(t, filepath.Join(to.dir, name)))
			}
			if got.String() != lines(all...) {
				t.Errorf("concatenated parts differ")
			}

			// A restart continues in the last, not yet full, part.
			to2 := newTestIn(t, to.dir, to.stateDir, tmpl, func(c *Config) { c.Compression, c.MaxFileSize = comp, "300B" })
			to2.write(all[0])
			to2.Close()
			files2 := listFiles(t, to.dir)
			last := partPath(name, len(files)-1)
			if st, _ := os.Stat(filepath.Join(to.dir, last)); st.Size() >= 300 {
				// The last part was full: a new part must have been started.
				if len(files2) != len(files)+1 {
					t.Errorf("files after restart %v", files2)
				}
			} else if len(files2) != len(files) {
				t.Errorf("files after restart %v, want appending to %s", files2, last)
			}
		})
	}
}

func TestIdleClose(t *testing.T) {
	to := newTest(t, "{stream}.log", func(c *Config) { c.Compression, c.IdleTimeout = "none", "50ms" })
	to.write(mkEvent("a", 0, "1"), mkEvent("b", 0, "2"))
	if n := to.openCount(); n != 2 {
		t.Fatalf("%d open, want 2", n)
	}
	if st := readState(t, to.stateDir); len(st) != 2 {
		t.Fatalf("state %v, want 2 files", st)
	}
	deadline := time.Now().Add(5 * time.Second)
	for to.openCount() > 0 || len(readState(t, to.stateDir)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle files not closed: %d open, state %v", to.openCount(), readState(t, to.stateDir))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Writing again reopens and appends.
	to.write(mkEvent("a", 0, "3"))
	if got := readArchive(t, filepath.Join(to.dir, "a.log")); got != lines(mkEvent("a", 0, "1"), mkEvent("a", 0, "3")) {
		t.Errorf("a.log = %q", got)
	}
}

func TestIdleCloseOnWrite(t *testing.T) {
	// With the timer effectively off, a Write still closes idle files.
	to := newTest(t, "{stream}.log", func(c *Config) { c.Compression, c.IdleTimeout = "none", "1h" })
	now := hour0
	to.setNow(func() time.Time { return now })
	to.write(mkEvent("a", 0, "1"))
	now = now.Add(2 * time.Hour)
	to.write(mkEvent("b", 0, "2"))
	to.mu.Lock()
	_, aOpen := to.files[filepath.Join(to.dir, "a.log")]
	to.mu.Unlock()
	if aOpen || to.openCount() != 1 {
		t.Errorf("a.log still open (open=%d)", to.openCount())
	}
}

func TestMaxOpenFilesLRU(t *testing.T) {
	to := newTest(t, "{stream}.log.gz", func(c *Config) { c.MaxOpenFiles = 2 })
	now := hour0
	to.setNow(func() time.Time { now = now.Add(time.Second); return now })
	a, b, c := mkEvent("a", 0, "a"), mkEvent("b", 0, "b"), mkEvent("c", 0, "c")
	to.write(a)
	to.write(b)
	to.write(a) // a is now more recent than b
	to.write(c) // evicts b
	if n := to.openCount(); n != 2 {
		t.Fatalf("%d open, want 2", n)
	}
	to.mu.Lock()
	_, bOpen := to.files[filepath.Join(to.dir, "b.log.gz")]
	to.mu.Unlock()
	if bOpen {
		t.Error("b (least recently written) still open")
	}
	// One batch for more files than the limit: all written, then trimmed.
	d, e := mkEvent("d", 0, "d"), mkEvent("e", 0, "e")
	to.write(a, b, c, d, e)
	if n := to.openCount(); n != 2 {
		t.Fatalf("%d open after a wide batch, want 2", n)
	}
	st := readState(t, to.stateDir)
	if len(st) > 5 {
		t.Errorf("state lists %d files", len(st))
	}
	to.Close()
	for name, want := range map[string]string{"a": lines(a, a, a), "b": lines(b, b), "c": lines(c, c), "d": lines(d), "e": lines(e)} {
		if got := readArchive(t, filepath.Join(to.dir, name+".log.gz")); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}

func TestWriteErrorPathBlocked(t *testing.T) {
	to := newTest(t, "{stream}/x.log.gz", nil)
	good := mkEvent("good", 0, "g")
	bad := mkEvent("blocked", 0, "b")
	// A file where the directory should be.
	blocker := filepath.Join(to.dir, "blocked")
	if err := os.WriteFile(blocker, []byte("not a dir"), 0o644); err != nil {
		t.Fatal(err)
	}
	to.write(good)
	if err := to.Write(context.Background(), []*event.Event{good, bad}); err == nil {
		t.Fatal("Write succeeded with a blocked path")
	} else {
		t.Logf("error (expected): %v", err)
	}
	// Nothing of the failed batch is in the good file.
	if got := readArchive(t, filepath.Join(to.dir, "good/x.log.gz")); got != lines(good) {
		t.Errorf("good file after failed batch: %q", got)
	}
	os.Remove(blocker)
	to.write(good, bad) // the router's retry
	to.Close()
	if got := readArchive(t, filepath.Join(to.dir, "good/x.log.gz")); got != lines(good, good) {
		t.Errorf("good: %q", got)
	}
	if got := readArchive(t, filepath.Join(to.dir, "blocked/x.log.gz")); got != lines(bad) {
		t.Errorf("blocked: %q", got)
	}
}

func TestWriteErrorRollsBackBatch(t *testing.T) {
	for _, comp := range []string{"gzip", "none"} {
		t.Run(comp, func(t *testing.T) {
			ext := map[string]string{"gzip": ".gz", "none": ""}[comp]
			to := newTest(t, "{stream}.log"+ext, func(c *Config) { c.Compression = comp })
			a, b := mkEvent("a", 0, "a"), mkEvent("b", 0, "b")
			to.write(a, b)
			// The second file's write fails half way, like a full disk.
			calls := 0
			to.writeFile = func(f *os.File, p []byte) (int, error) {
				calls++
				if calls == 2 {
					n, _ := f.Write(p[:len(p)/2])
					return n, errors.New("no space left on device (simulated)")
				}
				return f.Write(p)
			}
			if err := to.Write(context.Background(), []*event.Event{a, b}); err == nil {
				t.Fatal("no error")
			}
			for _, ev := range []*event.Event{a, b} {
				p := filepath.Join(to.dir, ev.Stream+".log"+ext)
				if got := readArchive(t, p); got != lines(ev) {
					t.Errorf("%s after failed batch: %q, want only the first batch", p, got)
				}
			}
			to.writeFile = (*os.File).Write
			to.write(a, b)
			to.Close()
			for _, ev := range []*event.Event{a, b} {
				p := filepath.Join(to.dir, ev.Stream+".log"+ext)
				if got := readArchive(t, p); got != lines(ev, ev) {
					t.Errorf("%s: %q", p, got)
				}
			}
		})
	}
}

func TestWriteErrorTruncateFails(t *testing.T) {
	to := newTest(t, "x.log.gz", nil)
	a := mkEvent("a", 0, "a")
	to.write(a)
	path := filepath.Join(to.dir, "x.log.gz")
	// The write fails after leaving junk, and the descriptor is gone, so
	// the rollback's Truncate fails too.
	to.writeFile = func(f *os.File, p []byte) (int, error) {
		n, _ := f.Write(p[:len(p)/2])
		f.Close()
		return n, errors.New("EIO (simulated)")
	}
	if err := to.Write(context.Background(), []*event.Event{a}); err == nil {
		t.Fatal("no error")
	}
	if st := readState(t, to.stateDir); len(st) != 1 {
		t.Errorf("broken file must stay in the state file: %v", st)
	}
	to.writeFile = (*os.File).Write
	to.write(a)
	to.Close()
	if got := readArchive(t, path); got != lines(a, a) {
		t.Errorf("content %q", got)
	}
	systemGzip(t, path)
}

func TestStateFileTracksOpenFiles(t *testing.T) {
	to := newTest(t, "{stream}.log.gz", nil)
	to.write(mkEvent("a", 0, "1"))
	st := readState(t, to.stateDir)
	if len(st) != 1 || st[0].Path != filepath.Join(to.dir, "a.log.gz") || st[0].Compression != "gzip" || st[0].Offset != 0 {
		t.Fatalf("state %+v", st)
	}
	to.write(mkEvent("b", 0, "1"), mkEvent("a", 0, "2"))
	if st := readState(t, to.stateDir); len(st) != 2 {
		t.Fatalf("state %+v", st)
	}
	to.Close()
	if st := readState(t, to.stateDir); len(st) != 0 {
		t.Fatalf("state after Close %+v", st)
	}
	// Reopening an existing file records its size as the known-good offset.
	to2 := newTestIn(t, to.dir, to.stateDir, "{stream}.log.gz", nil)
	to2.write(mkEvent("a", 0, "3"))
	size, _ := os.Stat(filepath.Join(to.dir, "a.log.gz"))
	st = readState(t, to.stateDir)
	if len(st) != 1 || st[0].Offset == 0 || st[0].Offset >= size.Size() {
		t.Fatalf("state %+v (size %d)", st, size.Size())
	}
}

func TestWriteAfterClose(t *testing.T) {
	to := newTest(t, "x.log", nil)
	to.Close()
	if err := to.Write(context.Background(), []*event.Event{mkEvent("a", 0, "x")}); err == nil {
		t.Error("Write after Close succeeded")
	}
	if err := to.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCancelledContext(t *testing.T) {
	to := newTest(t, "x.log", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := to.Write(ctx, []*event.Event{mkEvent("a", 0, "x")}); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v", err)
	}
}

func TestNoStateDir(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(dir, "x.log.gz")
	out, err := New(cfg, outputs.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if err := out.(outputs.Opener).Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev := mkEvent("a", 0, "x")
	if err := out.Write(context.Background(), []*event.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readArchive(t, cfg.Path); got != lines(ev) {
		t.Errorf("%q", got)
	}
}

func TestNewHasNoSideEffects(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(dir, "sub/{stream}/x.log.gz")
	out, err := New(cfg, outputs.Env{StateDir: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if files := listFiles(t, dir); len(files) != 0 {
		t.Errorf("files created: %v", files)
	}
	if _, err := os.Stat(filepath.Join(dir, "sub")); err == nil {
		t.Error("directory created")
	}
}
