package archive

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/router/event"
)

// gzipMember returns one complete gzip member holding s.
func gzipMember(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, 1)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

// crashed writes two batches to NAME in a fresh output and crashes it. It
// returns the output, the file path, its good content and size, and the
// state file as the crash left it.
func crashed(t *testing.T, name string, mod func(*Config)) (to *testOutput, path, content string, size int64, state []byte) {
	t.Helper()
	to = newTest(t, name, mod)
	b1 := []*event.Event{mkEvent("s", 0, "first"), mkEvent("s", 0, "second")}
	b2 := []*event.Event{mkEvent("s", 0, "third")}
	to.write(b1...)
	to.write(b2...)
	to.crash()
	path = filepath.Join(to.dir, name)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	state, err = os.ReadFile(filepath.Join(to.stateDir, stateFileName))
	if err != nil {
		t.Fatal(err)
	}
	return to, path, lines(b1...) + lines(b2...), st.Size(), state
}

// restart puts the file and the state file back as given and opens a new
// output (which runs recovery).
func restart(t *testing.T, to *testOutput, path string, data, state []byte, mod func(*Config)) *testOutput {
	t.Helper()
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(to.stateDir, stateFileName), state, 0o600); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(to.dir, path)
	return newTestIn(t, to.dir, to.stateDir, rel, mod)
}

func TestRecoverTornGzipMemberEveryOffset(t *testing.T) {
	to, path, content, size, state := crashed(t, "x.log.gz", nil)
	good, _ := os.ReadFile(path)
	member := gzipMember(t, "torn line 1\ntorn line 2\n")
	for k := 0; k <= len(member); k++ {
		data := append(bytes.Clone(good), member[:k]...)
		to2 := restart(t, to, path, data, state, nil)
		st, _ := os.Stat(path)
		wantSize, wantContent := size, content
		if k == len(member) { // a complete member is kept
			wantSize, wantContent = size+int64(len(member)), content+"torn line 1\ntorn line 2\n"
		}
		if st.Size() != wantSize {
			t.Fatalf("k=%d: size %d after recovery, want %d", k, st.Size(), wantSize)
		}
		if got := readArchive(t, path); got != wantContent {
			t.Fatalf("k=%d: content %q", k, got)
		}
		if k%8 == 0 || k == len(member)-1 {
			if got := systemGzip(t, path); got != wantContent {
				t.Fatalf("k=%d: zcat %q", k, got)
			}
		}
		if st := readState(t, to.stateDir); len(st) != 0 {
			t.Fatalf("k=%d: state after recovery %v", k, st)
		}
		// Appending after recovery keeps the whole file readable.
		more := mkEvent("s", 0, "after recovery")
		to2.write(more)
		to2.Close()
		if got := readArchive(t, path); got != wantContent+lines(more) {
			t.Fatalf("k=%d: after append %q", k, got)
		}
		if k == len(member)/2 {
			if got := systemGzip(t, path); got != wantContent+lines(more) {
				t.Fatalf("k=%d: zcat after append %q", k, got)
			}
		}
	}
}

func TestRecoverGarbageTail(t *testing.T) {
	to, path, content, size, state := crashed(t, "x.log.gz", nil)
	good, _ := os.ReadFile(path)
	r := rand.New(rand.NewPCG(3, 4))
	member := gzipMember(t, strings.Repeat("a fairly long line that compresses\n", 200))
	for i := range 30 {
		var tail []byte
		switch i % 3 {
		case 0: // random bytes
			tail = make([]byte, 1+r.IntN(5000))
			for j := range tail {
				tail[j] = byte(r.Uint32())
			}
		case 1: // a gzip header followed by junk
			tail = append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, make([]byte, r.IntN(100))...)
		case 2: // a member with one byte flipped (CRC or deflate error)
			tail = bytes.Clone(member)
			tail[10+r.IntN(len(tail)-10)] ^= byte(1 + r.IntN(255))
		}
		to2 := restart(t, to, path, append(bytes.Clone(good), tail...), state, nil)
		st, _ := os.Stat(path)
		if st.Size() != size {
			// A flipped byte in the stored length/CRC region can still
			// yield a valid member only if it is the same member; never
			// expected here.
			t.Fatalf("i=%d: size %d, want %d", i, st.Size(), size)
		}
		if got := systemGzip(t, path); got != content {
			t.Fatalf("i=%d: zcat %q", i, got)
		}
		to2.Close()
	}
}

func TestRecoverGarbageFromStartMovedAside(t *testing.T) {
	for _, comp := range []string{"gzip", "none"} {
		t.Run(comp, func(t *testing.T) {
			mod := func(c *Config) { c.Compression = comp }
			to, path, _, _, state := crashed(t, "x.log.gz", mod)
			junk := []byte("this is not gzip and has no newline")
			now := time.Unix(1700000000, 0)
			if err := os.WriteFile(path, junk, 0o640); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(to.stateDir, stateFileName), state, 0o600)
			cfg := DefaultConfig()
			cfg.Path, cfg.Compression = path, comp
			out, err := New(cfg, outputs.Env{StateDir: to.stateDir})
			if err != nil {
				t.Fatal(err)
			}
			o := out.(*output)
			o.now = func() time.Time { return now }
			if err := o.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			aside := path + ".corrupt-" + strconv.FormatInt(now.Unix(), 10)
			if b, err := os.ReadFile(aside); err != nil || !bytes.Equal(b, junk) {
				t.Fatalf("moved-aside file: %q, %v", b, err)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatalf("original still there: %v", err)
			}
			ev := mkEvent("s", 0, "fresh")
			if err := o.Write(context.Background(), []*event.Event{ev}); err != nil {
				t.Fatal(err)
			}
			o.Close()
			if got := readFileAs(t, path, comp); got != lines(ev) {
				t.Errorf("new file %q", got)
			}
		})
	}
}

func readFileAs(t *testing.T, path, comp string) string {
	if comp == "gzip" {
		return readArchive(t, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRecoverPlainPartialLine(t *testing.T) {
	mod := func(c *Config) { c.Compression = "none" }
	to, path, content, size, state := crashed(t, "x.log", mod)
	good, _ := os.ReadFile(path)
	for _, tail := range []string{"", "p", "partial line without newline", "\x00\x00\x00"} {
		to2 := restart(t, to, path, append(bytes.Clone(good), tail...), state, mod)
		st, _ := os.Stat(path)
		if st.Size() != size {
			t.Fatalf("tail %q: size %d, want %d", tail, st.Size(), size)
		}
		more := mkEvent("s", 0, "more")
		to2.write(more)
		to2.Close()
		b, _ := os.ReadFile(path)
		if string(b) != content+lines(more) {
			t.Fatalf("tail %q: content %q", tail, b)
		}
	}
}

func TestRecoverScansFromRecordedOffset(t *testing.T) {
	to, path, content, size, _ := crashed(t, "x.log.gz", nil)
	good, _ := os.ReadFile(path)
	abs, _ := filepath.Abs(path)
	torn := gzipMember(t, "torn\n")
	for _, tc := range []struct {
		name   string
		offset int64
	}{
		{"at-end-of-good-data", size},
		{"beyond-file-size", size + 1000}, // file shrank behind our back: scan all
		{"zero", 0},
	} {
		state := fmt.Appendf(nil, `{"version":1,"files":[{"path":%q,"compression":"gzip","offset":%d}]}`, abs, tc.offset)
		to2 := restart(t, to, path, append(bytes.Clone(good), torn[:len(torn)-3]...), state, nil)
		if got := systemGzip(t, path); got != content {
			t.Errorf("%s: content %q", tc.name, got)
		}
		to2.Close()
	}
}

func TestRecoverMissingFileAndBadState(t *testing.T) {
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	os.MkdirAll(stateDir, 0o755)
	state := fmt.Appendf(nil, `{"version":1,"files":[{"path":%q,"compression":"gzip","offset":0}]}`, filepath.Join(dir, "gone.gz"))
	os.WriteFile(filepath.Join(stateDir, stateFileName), state, 0o600)
	newTestIn(t, dir, stateDir, "x.gz", nil) // Open must succeed

	os.WriteFile(filepath.Join(stateDir, stateFileName), []byte("{garbage"), 0o600)
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(dir, "x.gz")
	out, _ := New(cfg, outputs.Env{StateDir: stateDir})
	if err := out.(outputs.Opener).Open(context.Background()); err == nil {
		t.Error("Open accepted a corrupt state file")
	}
	out.Close()
}

// TestKill9 runs a writer in a child process, kills it with SIGKILL while it
// writes, recovers, and checks that the archive is a clean prefix of whole
// batches that zcat reads.
func TestKill9(t *testing.T) {
	if dir := os.Getenv("SLUICE_ARCHIVE_KILL9_DIR"); dir != "" {
		kill9Child(dir)
		return
	}
	if testing.Short() {
		t.Skip("short")
	}
	for _, comp := range []string{"gzip", "none"} {
		t.Run(comp, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run", "^TestKill9$")
			cmd.Env = append(os.Environ(), "SLUICE_ARCHIVE_KILL9_DIR="+dir, "SLUICE_ARCHIVE_KILL9_COMP="+comp)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "x.log")
			deadline := time.Now().Add(20 * time.Second)
			for {
				st, err := os.Stat(path)
				if err == nil && st.Size() > 2<<20 {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatal("child wrote nothing")
				}
				time.Sleep(5 * time.Millisecond)
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()

			to := newTestIn(t, dir, filepath.Join(dir, "state"), "x.log", func(c *Config) { c.Compression = comp })
			to.Close()
			var got string
			if comp == "gzip" {
				got = systemGzip(t, path)
			} else {
				got = readFileAs(t, path, comp)
			}
			// Lines are "batch N line M"; every batch must be whole and in order.
			batch, line := 0, 0
			for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
				want := fmt.Sprintf("batch %d line %d %s", batch, line, kill9Pad)
				if l != want {
					t.Fatalf("line %q, want %q", l, want)
				}
				if line++; line == kill9Lines {
					batch, line = batch+1, 0
				}
			}
			// A gzip member holds a whole batch, so a torn one is cut off
			// entirely. Plain text is cut after its last newline: a kill
			// inside the batch's write(2) (which a fatal signal can stop
			// between pages) leaves its first lines, which the queue
			// delivers again after a restart.
			if batch == 0 || (comp == "gzip" && line != 0) {
				t.Fatalf("ended in batch %d at line %d", batch, line)
			}
			t.Logf("%d whole batches and %d lines of the next survived", batch, line)
		})
	}
}

const kill9Lines = 1000

var kill9Pad = strings.Repeat("p", 200)

func kill9Child(dir string) {
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(dir, "x.log")
	cfg.Compression = os.Getenv("SLUICE_ARCHIVE_KILL9_COMP")
	os.MkdirAll(filepath.Join(dir, "state"), 0o755)
	out, err := New(cfg, outputs.Env{StateDir: filepath.Join(dir, "state")})
	if err != nil {
		panic(err)
	}
	if err := out.(outputs.Opener).Open(context.Background()); err != nil {
		panic(err)
	}
	evs := make([]*event.Event, kill9Lines)
	for b := 0; ; b++ {
		for i := range evs {
			evs[i] = &event.Event{Time: hour0, Raw: fmt.Appendf(nil, "batch %d line %d %s", b, i, kill9Pad)}
		}
		if err := out.Write(context.Background(), evs); err != nil {
			panic(err)
		}
	}
}
