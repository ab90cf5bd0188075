package tail

import (
	"path/filepath"
	"testing"
)

func TestBasicFollow(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLines(t, log, "a", 0, 100)
	rec := &recorder{}
	r := start(t, testConfig(filepath.Join(dir, "*.log")), rec, t.TempDir())
	rec.wait(t, 100)
	appendLines(t, log, "a", 100, 250)
	rec.wait(t, 250)
	r.stop()
	exactlyOnce(t, seqCount(t, rec.messages(), "a"), 250)
	ev := rec.events()[0]
	if ev.Origin != log || ev.Stream != "file" || ev.Input != "test" || ev.Facility != -1 || ev.Severity != -1 ||
		string(ev.Raw) != "a-0" || ev.Message != "a-0" || ev.Received.IsZero() || !ev.Time.Equal(ev.Received) {
		t.Errorf("event = %+v", ev)
	}
}
