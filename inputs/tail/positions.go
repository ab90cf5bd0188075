package tail

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// fileID identifies a file independently of its name: device and inode.
// An inode number is reused once its file is deleted, so a fileID alone
// does not prove two files are the same; fingerprint does the rest.
type fileID struct{ Dev, Ino uint64 }

// fpMax is how many leading bytes of a file its fingerprint covers at most.
const fpMax = 1024

// fingerprint is the CRC-32C of a file's first Len bytes (Len ≤ fpMax).
// A file shorter than fpMax is fingerprinted over what it has; the
// fingerprint grows as the reader reads the following bytes, so it always
// covers min(fpMax, bytes read) and a file whose beginning changed (a
// truncation that was written over, a reused inode) fails to match.
type fingerprint struct {
	Len int
	CRC uint32
}

func crc(c uint32, b []byte) uint32 {
	return crc32.Update(c, crc32.MakeTable(crc32.Castagnoli), b)
}

// extend adds to fp the bytes of chunk, read at file offset off, that lie
// within the first fpMax bytes and just after what fp covers.
func (fp *fingerprint) extend(chunk []byte, off int64) {
	if fp.Len >= fpMax || off > int64(fp.Len) || off+int64(len(chunk)) <= int64(fp.Len) {
		return
	}
	from := fp.Len - int(off)
	to := min(len(chunk), fpMax-int(off))
	fp.CRC = crc(fp.CRC, chunk[from:to])
	fp.Len += to - from
}

// readPrefix reads the first bytes of f (at most fpMax) into buf and
// returns how many it got.
func readPrefix(f *os.File, buf *[fpMax]byte) (int, error) {
	n, err := f.ReadAt(buf[:], 0)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// prefixMatches reports whether want fingerprints the first want.Len
// bytes of prefix.
func prefixMatches(prefix []byte, want fingerprint) bool {
	return len(prefix) >= want.Len && crc(0, prefix[:want.Len]) == want.CRC
}

// position is what is saved per file: its identity, the name it was last
// seen under, and the offset just after the last line (or record) whose
// Emit returned nil.
type position struct {
	Path   string `json:"path"`
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	FPLen  int    `json:"fp_len"`
	FPCRC  uint32 `json:"fp_crc32c"`
	Offset int64  `json:"offset"`
}

func (p *position) id() fileID            { return fileID{p.Dev, p.Ino} }
func (p *position) fp() fingerprint       { return fingerprint{p.FPLen, p.FPCRC} }
func (p *position) setFP(fp fingerprint)  { p.FPLen, p.FPCRC = fp.Len, fp.CRC }
func (p *position) same(q *position) bool { return *p == *q }

// positionsFile is the JSON document saved in the state directory.
type positionsFile struct {
	Version int        `json:"version"`
	Files   []position `json:"files"`
}

const (
	positionsName    = "positions.json"
	positionsVersion = 1
)

// registry holds the position of every file the input follows or has
// followed and not yet forgotten, and saves them. Safe for concurrent use.
type registry struct {
	dir string // state directory; "" keeps positions in memory only

	saveMu sync.Mutex // one save at a time

	mu     sync.Mutex
	files  map[fileID]*position
	dirty  bool
	urgent bool // a file without a saved position was added: save before reading it
}

func newRegistry(dir string) *registry {
	return &registry{dir: dir, files: make(map[fileID]*position)}
}

// load reads the saved positions. A missing file is an empty registry. A
// file that cannot be decoded is renamed to positions.json.corrupt and
// reported as a *corruptError, and the registry starts empty; any other
// error (permissions, I/O) is returned with the registry empty too.
func (r *registry) load() error {
	if r.dir == "" {
		return nil
	}
	path := filepath.Join(r.dir, positionsName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading positions: %w", err)
	}
	var pf positionsFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pf); err != nil || pf.Version != positionsVersion {
		if err == nil {
			err = fmt.Errorf("unknown version %d", pf.Version)
		}
		bad := path + ".corrupt"
		if rerr := os.Rename(path, bad); rerr != nil {
			return fmt.Errorf("positions file %s is unusable (%w) and could not be moved aside: %w", path, err, rerr)
		}
		return &corruptError{fmt.Errorf("positions file %s is unusable (%w); moved to %s", path, err, bad)}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range pf.Files {
		p := pf.Files[i]
		if p.Offset < 0 || p.FPLen < 0 || p.FPLen > fpMax {
			continue
		}
		r.files[p.id()] = &p
	}
	return nil
}

// get returns a copy of the position of id.
func (r *registry) get(id fileID) (position, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.files[id]
	if !ok {
		return position{}, false
	}
	return *p, true
}

// set records p (replacing the position of the same file).
func (r *registry) set(p position) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.files[p.id()]
	if ok && old.same(&p) {
		return
	}
	r.files[p.id()] = &p
	r.dirty = true
	r.urgent = r.urgent || !ok
}

// forget removes the position of id.
func (r *registry) forget(id fileID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.files[id]; ok {
		delete(r.files, id)
		r.dirty = true
	}
}

// all returns a copy of every position, sorted by path then identity.
func (r *registry) all() []position {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshotLocked()
}

func (r *registry) snapshotLocked() []position {
	out := make([]position, 0, len(r.files))
	for _, p := range r.files {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b position) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Dev, b.Dev), cmp.Compare(a.Ino, b.Ino))
	})
	return out
}

// save writes the positions if they changed since the last save:
// positions.json.tmp is written and fsynced, renamed over positions.json,
// and the directory is fsynced. On error the registry stays dirty.
func (r *registry) save() error { return r.saveIf(false) }

// saveUrgent saves the positions if a file was added since the last save.
// A file's position must be on disk before any of its lines is emitted:
// otherwise a crash before the next periodic save forgets the file, and
// if a rotation renamed it meanwhile its unread lines are never found.
func (r *registry) saveUrgent() error { return r.saveIf(true) }

func (r *registry) saveIf(onlyUrgent bool) error {
	if r.dir == "" {
		return nil
	}
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	r.mu.Lock()
	if !r.dirty || (onlyUrgent && !r.urgent) {
		r.mu.Unlock()
		return nil
	}
	snap := r.snapshotLocked()
	r.dirty, r.urgent = false, false
	r.mu.Unlock()

	err := writeAtomic(r.dir, positionsName, positionsFile{Version: positionsVersion, Files: snap})
	if err != nil {
		r.mu.Lock()
		r.dirty, r.urgent = true, true
		r.mu.Unlock()
		return err
	}
	return nil
}

// writeAtomic replaces dir/name with the JSON encoding of v, durably.
func writeAtomic(dir, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding positions: %w", err)
	}
	b = append(b, '\n')
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("writing positions: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("writing positions: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing positions: fsync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing positions: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("writing positions: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("writing positions: opening directory for fsync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("writing positions: fsync directory: %w", err)
	}
	return nil
}
