package archive

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/klauspost/compress/gzip"
)

// stateFileName is the file in the state directory that lists open files.
const stateFileName = "open-files.json"

// stateFile is the content of the state file.
type stateFile struct {
	Version int          `json:"version"`
	Files   []stateEntry `json:"files"`
}

// stateEntry is one file that may end in a torn write.
type stateEntry struct {
	Path        string `json:"path"`        // absolute
	Compression string `json:"compression"` // "gzip" or "none": how to find the end of valid data
	Offset      int64  `json:"offset"`      // the bytes before this offset are known to be complete
}

// saveState atomically replaces the state file with the current open (and
// broken) files: write a temporary file, fsync it, rename it over the old
// one, fsync the directory.
func (o *output) saveState() error {
	if o.statePath == "" {
		o.stateGrew, o.stateDirty = false, false
		return nil
	}
	st := stateFile{Version: 1, Files: []stateEntry{}}
	comp := "none"
	if o.s.gzip {
		comp = "gzip"
	}
	for _, f := range o.files {
		switch {
		case f.f != nil:
			st.Files = append(st.Files, stateEntry{Path: f.abs, Compression: comp, Offset: f.base})
		case f.broken:
			st.Files = append(st.Files, stateEntry{Path: f.abs, Compression: comp, Offset: f.size})
		}
	}
	slices.SortFunc(st.Files, func(a, b stateEntry) int { return cmp.Compare(a.Path, b.Path) })
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(o.statePath, append(b, '\n')); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	o.stateGrew, o.stateDirty = false, false
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// recoverAll repairs every file listed in the state file, then records that
// none is open.
func (o *output) recoverAll(ctx context.Context) error {
	b, err := os.ReadFile(o.statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("archive: read state file: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("archive: state file %s is corrupt (remove it to start without crash recovery): %w", o.statePath, err)
	}
	var errs []error
	for _, e := range st.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := o.recoverFile(e); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("archive: crash recovery: %w", errors.Join(errs...))
	}
	return o.saveState()
}

// recoverFile truncates e.Path after its last complete gzip member (or
// newline), scanning from e.Offset; a file without any valid data is
// renamed aside.
func (o *output) recoverFile(e stateEntry) error {
	f, err := os.OpenFile(e.Path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed by someone since: nothing to repair
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", e.Path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", e.Path, err)
	}
	size := st.Size()
	from := e.Offset
	if from < 0 || from > size {
		from = 0 // changed behind our back: check all of it
	}
	var good int64
	if e.Compression == "none" {
		good, err = lastLineEnd(f, from, size)
	} else {
		good, err = gzipEnd(f, from, size)
	}
	if err != nil {
		return fmt.Errorf("scan %s: %w", e.Path, err)
	}
	switch {
	case good == size:
		return nil
	case good == 0:
		aside := e.Path + ".corrupt-" + strconv.FormatInt(o.now().Unix(), 10)
		if err := os.Rename(e.Path, aside); err != nil {
			return fmt.Errorf("move aside %s, which holds no valid data: %w", e.Path, err)
		}
		o.log.Warn("archive file holds no valid data; moved aside", "path", e.Path, "moved_to", aside, "bytes", size)
		return syncDir(filepath.Dir(e.Path))
	default:
		if err := f.Truncate(good); err != nil {
			return fmt.Errorf("truncate %s: %w", e.Path, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", e.Path, err)
		}
		o.log.Warn("truncated torn data after a crash", "path", e.Path, "bytes_truncated", size-good, "size", good)
		return nil
	}
}

// countReader counts the bytes read from r and keeps its first error other
// than io.EOF, so a read failure is not mistaken for corrupt data.
type countReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// gzipEnd returns the offset just after the last complete, CRC-valid gzip
// member in a run of members starting at from; from itself if none is.
//
// The gzip reader reads through a bufio.Reader, which implements
// io.ByteReader, so the decompressor does not read past a member's end; the
// end offset is the bytes the bufio.Reader took from the file minus those
// still buffered.
func gzipEnd(r io.ReaderAt, from, size int64) (int64, error) {
	cr := &countReader{r: io.NewSectionReader(r, from, size-from)}
	br := bufio.NewReaderSize(cr, 256<<10)
	var zr gzip.Reader
	good := from
	for {
		if err := zr.Reset(br); err != nil {
			break // io.EOF: clean end; anything else: torn or foreign header
		}
		zr.Multistream(false)
		if _, err := io.Copy(io.Discard, &zr); err != nil {
			break // torn or corrupt member
		}
		good = from + cr.n - int64(br.Buffered())
	}
	if cr.err != nil {
		return 0, cr.err
	}
	return good, nil
}

// lastLineEnd returns the offset just after the last '\n' in [from, size),
// or from if there is none.
func lastLineEnd(r io.ReaderAt, from, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end := size; end > from; {
		start := max(end-int64(len(buf)), from)
		chunk := buf[:end-start]
		if _, err := r.ReadAt(chunk, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return from, nil
}
