package tail

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/conf"
)

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*Config)
		fields []string // the FieldErrors expected, in order; none: valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"relative_pattern", func(c *Config) { c.Paths = []string{"logs/*.log"} }, nil},
		{"multiline_defaults", func(c *Config) { c.Multiline = &MultilineConfig{Start: `^\d`} }, nil},
		{"no_paths", func(c *Config) { c.Paths = nil }, []string{"paths"}},
		{"bad_glob", func(c *Config) { c.Paths = []string{"/var/log/[a.log"} }, []string{"paths"}},
		{"duplicate", func(c *Config) { c.Paths = []string{"/a/*.log", "/a/./*.log"} }, []string{"paths"}},
		{"bad_exclude", func(c *Config) { c.Exclude = []string{"/x/{a"} }, []string{"exclude"}},
		{"empty_stream", func(c *Config) { c.Stream = "" }, []string{"stream"}},
		{"start_at", func(c *Config) { c.StartAt = "middle" }, []string{"start_at"}},
		{"max_line_zero", func(c *Config) { c.MaxLineBytes = "0" }, []string{"max_line_bytes"}},
		{"max_line_huge", func(c *Config) { c.MaxLineBytes = "17MiB" }, []string{"max_line_bytes"}},
		{"max_line_bad", func(c *Config) { c.MaxLineBytes = "lots" }, []string{"max_line_bytes"}},
		{"poll_short", func(c *Config) { c.PollInterval = "1ms" }, []string{"poll_interval"}},
		{"scan_bad", func(c *Config) { c.ScanInterval = "soon" }, []string{"scan_interval"}},
		{"rotate_wait_negative", func(c *Config) { c.RotateWait = "-1s" }, []string{"rotate_wait"}},
		{"max_open_zero", func(c *Config) { c.MaxOpenFiles = 0 }, []string{"max_open_files"}},
		{"multiline_empty", func(c *Config) { c.Multiline = &MultilineConfig{} }, []string{"multiline.start"}},
		{"multiline_bad", func(c *Config) {
			c.Multiline = &MultilineConfig{Start: `(`, MaxBytes: "0", Timeout: "x"}
		}, []string{"multiline.start", "multiline.max_bytes", "multiline.timeout"}},
		{"several", func(c *Config) { c.Stream = ""; c.MaxOpenFiles = -1 }, []string{"stream", "max_open_files"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Paths = []string{"/var/log/*.log"}
			tc.edit(cfg)
			_, err := New(cfg, testEnv())
			var got []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var fe *conf.FieldError
					if !errors.As(e, &fe) {
						t.Fatalf("error %v is not a FieldError", e)
					}
					got = append(got, fe.Field)
				}
			}
			if !slices.Equal(got, tc.fields) {
				t.Errorf("field errors %v (%v); want %v", got, err, tc.fields)
			}
		})
	}
}

// frameAll runs text through a framer in chunks of chunk bytes and
// returns the events' messages, the oversize count and the safe offset.
func frameAll(t *testing.T, s *settings, text string, chunk int, final bool) ([]string, int, int64) {
	t.Helper()
	fr := newFramer(s, 0)
	pool := newBufPool(2 * s.readChunk)
	var a eventAlloc
	m := &eventMeta{}
	b := &batch{}
	all := &batch{}
	for i := 0; i < len(text); i += chunk {
		part := text[i:min(i+chunk, len(text))]
		copy(fr.space(pool, len(part)), part)
		fr.fill(len(part))
		for {
			fr.frame(b, s, &a, m, time.Time{}, false)
			all.evs = append(all.evs, b.evs...)
			all.over += b.over
			full := b.full(s)
			*b = batch{}
			if !full {
				break
			}
		}
		fr.release(pool)
	}
	if final {
		fr.finish(b, s, &a, m, time.Time{})
		all.evs = append(all.evs, b.evs...)
		all.over += b.over
	}
	var msgs []string
	for _, ev := range all.evs {
		if ev.Message != string(ev.Raw) {
			t.Fatalf("Message %q differs from Raw %q", ev.Message, ev.Raw)
		}
		msgs = append(msgs, ev.Message)
	}
	return msgs, all.over, fr.safe()
}

func TestFramer(t *testing.T) {
	ml := func(start string, maxBytes int) *multiline {
		c := &Config{Paths: []string{"/x"}, Multiline: &MultilineConfig{Start: start, MaxBytes: "1MiB"}}
		cfg := DefaultConfig()
		cfg.Paths, cfg.Multiline = c.Paths, c.Multiline
		s, err := validate(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.multiline.maxBytes = maxBytes
		return s.multiline
	}
	stack := "2026-11-22 ERROR boom\njava.lang.X: y\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)\n2026-11-22 INFO ok\n"
	for _, tc := range []struct {
		name    string
		maxLine int
		ml      *multiline
		text    string
		final   bool
		want    []string
		over    int
		safe    int64
	}{
		{name: "lines", maxLine: 100, text: "a\nbb\n\nccc\n", want: []string{"a", "bb", "", "ccc"}, safe: 10},
		{name: "crlf", maxLine: 100, text: "a\r\nb\rc\r\n", want: []string{"a", "b\rc"}, safe: 8},
		{name: "partial_waits", maxLine: 100, text: "a\npart", want: []string{"a"}, safe: 2},
		{name: "partial_final", maxLine: 100, text: "a\npart", final: true, want: []string{"a", "part"}, safe: 6},
		{name: "oversize_in_buffer", maxLine: 4, text: "123456\nab\n", want: []string{"1234", "ab"}, over: 1, safe: 10},
		{name: "oversize_across_chunks", maxLine: 4, text: strings.Repeat("x", 50) + "\nab\n", want: []string{"xxxx", "ab"}, over: 1, safe: 54},
		{name: "oversize_pending", maxLine: 4, text: "ok\n" + strings.Repeat("x", 50), want: []string{"ok"}, safe: 3},
		{name: "exactly_max_with_cr", maxLine: 4, text: "1234\r\n", want: []string{"1234"}, safe: 6},
		{name: "multiline", maxLine: 100, ml: ml(`^\d{4}-`, 1<<20), text: stack,
			want: []string{"2026-11-22 ERROR boom\njava.lang.X: y\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)"}, safe: int64(strings.Index(stack, "2026-11-22 INFO"))},
		{name: "multiline_final", maxLine: 100, ml: ml(`^\d{4}-`, 1<<20), text: stack, final: true,
			want: []string{"2026-11-22 ERROR boom\njava.lang.X: y\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)", "2026-11-22 INFO ok"}, safe: int64(len(stack))},
		{name: "multiline_leading_continuation", maxLine: 100, ml: ml(`^S`, 1<<20), text: "c1\nc2\nS1\nc3\nS2\n",
			want: []string{"c1\nc2", "S1\nc3"}, safe: 12},
		{name: "multiline_max_bytes", maxLine: 100, ml: ml(`^S`, 8), text: "S1234\nabcdef\nxyz\nS2\nS3\n",
			want: []string{"S1234\nab", "S2"}, over: 1, safe: 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{1, 3, 7, 4096} {
				s := &settings{maxLine: tc.maxLine, multiline: tc.ml, maxBatch: 2, maxBatchRaw: 1 << 20, readChunk: 16}
				got, over, safe := frameAll(t, s, tc.text, chunk, tc.final)
				if !slices.Equal(got, tc.want) || over != tc.over || safe != tc.safe {
					t.Errorf("chunk %d: got %q over %d safe %d; want %q over %d safe %d", chunk, got, over, safe, tc.want, tc.over, tc.safe)
				}
			}
		})
	}
}

func TestFingerprintExtend(t *testing.T) {
	data := []byte(strings.Repeat("0123456789", 200)) // 2000 bytes
	for _, chunk := range []int{1, 100, 1000, 1024, 3000} {
		var fp fingerprint
		for off := 0; off < len(data); off += chunk {
			fp.extend(data[off:min(off+chunk, len(data))], int64(off))
		}
		if fp.Len != fpMax || fp.CRC != crc(0, data[:fpMax]) {
			t.Errorf("chunk %d: fingerprint %+v; want the first %d bytes", chunk, fp, fpMax)
		}
	}
	// Started at offset 10 with 10 bytes known, extended from there.
	fp := fingerprint{Len: 10, CRC: crc(0, data[:10])}
	fp.extend(data[10:50], 10)
	if fp.Len != 50 || fp.CRC != crc(0, data[:50]) {
		t.Errorf("resumed fingerprint %+v", fp)
	}
	fp.extend(data[60:70], 60) // not contiguous: ignored
	if fp.Len != 50 {
		t.Errorf("non-contiguous bytes were added: %+v", fp)
	}
	if !prefixMatches(data[:60], fp) || prefixMatches(data[:49], fp) || prefixMatches([]byte(strings.Repeat("x", 60)), fp) {
		t.Error("prefixMatches")
	}
}

func TestPositionsFile(t *testing.T) {
	dir := t.TempDir()
	r := newRegistry(dir)
	r.set(position{Path: "/b", Dev: 1, Ino: 2, FPLen: 3, FPCRC: 4, Offset: 5})
	r.set(position{Path: "/a", Dev: 1, Ino: 3, Offset: 7})
	if err := r.save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, positionsName+".tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	r2 := newRegistry(dir)
	if err := r2.load(); err != nil {
		t.Fatal(err)
	}
	if got := r2.all(); len(got) != 2 || got[0].Path != "/a" || got[1] != (position{Path: "/b", Dev: 1, Ino: 2, FPLen: 3, FPCRC: 4, Offset: 5}) {
		t.Errorf("loaded %+v", got)
	}
	// Damaged: moved aside, reported, empty.
	if err := os.WriteFile(filepath.Join(dir, positionsName), []byte(`{"version":1,"files":[{"pa`), 0o644); err != nil {
		t.Fatal(err)
	}
	r3 := newRegistry(dir)
	err := r3.load()
	var ce *corruptError
	if !errors.As(err, &ce) || len(r3.all()) != 0 {
		t.Fatalf("load of a damaged file: %v, %d positions", err, len(r3.all()))
	}
	if _, err := os.Stat(filepath.Join(dir, positionsName+".corrupt")); err != nil {
		t.Errorf("damaged file not moved aside: %v", err)
	}
	// Unreadable state (a directory where the file should be): an error
	// Run returns.
	bad := t.TempDir()
	if err := os.Mkdir(filepath.Join(bad, positionsName), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := newRegistry(bad).load(); err == nil || errors.As(err, &ce) {
		t.Errorf("load of an unreadable file: %v", err)
	}
}

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.log", "b.txt", "x/c.log", "x/y/d.log", "x/y/z/e.log", "skip/f.log", "x/.hidden.log"} {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o644)
	}
	os.Symlink(filepath.Join(dir, "a.log"), filepath.Join(dir, "x", "link.log"))
	os.Symlink(dir, filepath.Join(dir, "x", "loop")) // a directory symlink: not followed
	for _, tc := range []struct {
		pattern string
		exclude []string
		want    []string
	}{
		{"*.log", nil, []string{"a.log"}},
		{"*/*.log", nil, []string{"skip/f.log", "x/.hidden.log", "x/c.log", "x/link.log"}},
		{"x/*/*.log", nil, []string{"x/y/d.log"}},
		{"**/*.log", []string{"**/skip/**", "**/.*"}, []string{"a.log", "x/c.log", "x/link.log", "x/y/d.log", "x/y/z/e.log"}},
		{"{a,x/c}.log", nil, []string{"a.log", "x/c.log"}},
		{"nope/*.log", nil, nil},
	} {
		var ex []string
		for _, e := range tc.exclude {
			ex = append(ex, filepath.Join(dir, e))
		}
		x := expand([]string{filepath.Join(dir, tc.pattern)}, ex)
		var got []string
		for _, f := range x.files {
			got = append(got, strings.TrimPrefix(f, dir+"/"))
		}
		if !slices.Equal(got, tc.want) || len(x.errs) != 0 {
			t.Errorf("%s: %q (errors %v); want %q", tc.pattern, got, x.errs, tc.want)
		}
	}
}
