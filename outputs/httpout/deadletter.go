package httpout

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/sluicelog/sluice/outputs/format"
)

// maxResponseSnippet is how much of a rejected response's body is kept
// (dead letters, logs and errors).
const maxResponseSnippet = 1 << 10

// deadLetter appends rejected events to a file as JSON lines. It is safe
// for concurrent use (the senders of one Write share it).
type deadLetter struct {
	path   string
	output string // the output's name, written in every line

	mu sync.Mutex
	f  *os.File // nil until opened
}

// open creates the file's directory and opens it for appending; it is
// called by Open, and again by write after a failure.
func (d *deadLetter) open() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.openLocked()
}

func (d *deadLetter) openLocked() error {
	if d.f != nil {
		return nil
	}
	if dir := filepath.Dir(d.path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("dead-letter file: %w", err)
		}
	}
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("dead-letter file: %w", err)
	}
	d.f = f
	return nil
}

// appendLine appends one dead-letter line for an event encoded as item (a
// JSON value) to dst.
func (d *deadLetter) appendLine(dst []byte, now time.Time, status int, response, item []byte) []byte {
	dst = append(dst, `{"time":"`...)
	dst = now.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","output":`...)
	dst = format.AppendJSONString(dst, d.output)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, `,"response":`...)
	dst = format.AppendJSONString(dst, response)
	dst = append(dst, `,"event":`...)
	dst = append(dst, item...)
	return append(dst, '}', '\n')
}

// write appends lines with one write(2) and fsyncs the file. After a
// failed write the file is truncated back (best effort) and reopened on the
// next call.
func (d *deadLetter) write(lines []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.openLocked(); err != nil {
		return err
	}
	st, statErr := d.f.Stat()
	_, err := d.f.Write(lines)
	if err == nil {
		err = d.f.Sync()
	}
	if err != nil {
		if statErr == nil {
			_ = d.f.Truncate(st.Size()) // do not leave half a line before the retry's copy
		}
		d.f.Close()
		d.f = nil
		return fmt.Errorf("dead-letter file: %w", err)
	}
	return nil
}

func (d *deadLetter) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}
