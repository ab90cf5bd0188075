package archive

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/router/event"
)

func TestCapComponents(t *testing.T) {
	long := strings.Repeat("a", 300) + ".log.gz"
	other := strings.Repeat("a", 299) + "b.log.gz"
	for _, tc := range []struct{ in string }{
		{"archive/short/name.log.gz"},
		{"archive/" + long},
		{"archive/" + long + "/" + long + "/x"},
		{"/" + strings.Repeat("z", 255) + "/exactly-255"},
	} {
		got := string(capComponents([]byte(tc.in)))
		for _, c := range strings.Split(got, "/") {
			if len(c) > maxComponent {
				t.Errorf("%q: component of %d bytes left", tc.in, len(c))
			}
		}
		if len(tc.in) < 300 && got != tc.in {
			t.Errorf("%q changed to %q", tc.in, got)
		}
	}
	a := string(capComponents([]byte("d/" + long)))
	b := string(capComponents([]byte("d/" + other)))
	if a == b {
		t.Error("two long names capped to the same name")
	}
	if !strings.HasSuffix(a, ".log.gz") || !strings.HasPrefix(a, "d/aaaa") || len(a) != 2+maxComponent {
		t.Errorf("capped name %q (len %d) lost its head or extension", a, len(a))
	}
}

// An event whose path can never be written (here: it names a directory)
// is rejected on its own; the rest of the batch is written, and the output
// keeps working.
func TestUnwritablePathRejectsOnlyItsEvents(t *testing.T) {
	to := newTest(t, "{stream}.log", func(c *Config) { c.Compression = "none" })
	if err := os.Mkdir(filepath.Join(to.dir, "isdir.log"), 0o755); err != nil {
		t.Fatal(err)
	}
	good1, bad, good2 := mkEvent("ok", 0, "one"), mkEvent("isdir", 0, "lost"), mkEvent("ok", 0, "two")
	err := to.Write(context.Background(), []*event.Event{good1, bad, good2})
	var pe *outputs.PartialError
	if !errors.As(err, &pe) || pe.Rejected != 1 {
		t.Fatalf("Write = %v; want a PartialError rejecting 1 event", err)
	}
	got, _ := os.ReadFile(filepath.Join(to.dir, "ok.log"))
	if want := lines(good1, good2); string(got) != want {
		t.Fatalf("ok.log = %q; want %q", got, want)
	}
	// A component longer than 255 bytes (three 128-byte placeholders) is
	// capped, not rejected.
	lo := newTest(t, "{stream}{host}{app}.log", func(c *Config) { c.Compression = "none" })
	long := mkEvent(strings.Repeat("s", 300), 0, "long stream")
	long.Host, long.App = strings.Repeat("h", 300), strings.Repeat("a", 300)
	lo.write(long)
	files, _ := filepath.Glob(filepath.Join(lo.dir, "sss*.log"))
	if len(files) != 1 {
		t.Fatalf("long-named file: %v", files)
	}
	if b, _ := os.ReadFile(files[0]); !bytes.Contains(b, []byte("long stream")) {
		t.Fatalf("long-named file holds %q", b)
	}
}
