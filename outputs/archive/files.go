package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// openFile opens f for appending: the numbered part to continue when
// max_file_size is set, creating directories as needed. A broken file is
// first truncated back to its last good size.
func (o *output) openFile(f *file) error {
	path := f.path
	if !f.broken {
		path = f.key
		if o.s.maxSize > 0 {
			var err error
			if path, err = o.currentPart(f.key); err != nil {
				return err
			}
		}
	}
	created := false
	fd, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		created = true
		fd, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, o.s.mode)
		if errors.Is(err, fs.ErrNotExist) {
			if err = os.MkdirAll(filepath.Dir(path), o.s.dirMode); err == nil {
				fd, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, o.s.mode)
			}
		}
	}
	if err != nil {
		return err // a *fs.PathError: names the path
	}
	st, err := fd.Stat()
	if err != nil {
		fd.Close()
		return err
	}
	size := st.Size()
	if f.broken && size > f.size {
		if err := fd.Truncate(f.size); err != nil {
			fd.Close()
			return fmt.Errorf("open %s: remove the partial write of an earlier batch: %w", path, err)
		}
		o.log.Warn("removed the partial write of an earlier failed batch", "path", path, "bytes", size-f.size)
		size = f.size
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		fd.Close()
		return fmt.Errorf("open %s: %w", path, err)
	}
	if !f.broken {
		o.stateGrew = true // broken files are still listed in the state file
	}
	f.path, f.abs, f.f, f.size, f.base, f.broken = path, abs, fd, size, size, false
	f.created = f.created || created
	f.lastWrite = o.now()
	o.open++
	return nil
}

// currentPart returns the first part of key that is below max_file_size (or
// does not exist yet).
func (o *output) currentPart(key string) (string, error) {
	for n := 0; ; n++ {
		p := partPath(key, n)
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && st.Size() < o.s.maxSize) {
			return p, nil
		}
		if err != nil {
			return "", err
		}
	}
}

// partPath names part n of path: the number goes before the extension, or
// before both when the name ends in .gz: 13.log.gz → 13.1.log.gz,
// 13.log → 13.1.log, 13 → 13.1. Part 0 is path itself.
func partPath(path string, n int) string {
	if n == 0 {
		return path
	}
	dir, name := filepath.Split(path)
	stem, ext := name, ""
	if s, ok := strings.CutSuffix(stem, ".gz"); ok {
		stem, ext = s, ".gz"
	}
	if e := filepath.Ext(stem); e != "" && e != stem {
		stem, ext = strings.TrimSuffix(stem, e), e+ext
	}
	return dir + stem + "." + strconv.Itoa(n) + ext
}

// closeFile fsyncs and closes f (and fsyncs its directory if f was created
// by this output) and forgets it.
func (o *output) closeFile(f *file) error {
	var err error
	if f.f != nil {
		err = f.f.Sync()
		if cerr := f.f.Close(); err == nil {
			err = cerr
		}
		if f.created && err == nil {
			// Make the new directory entry durable too.
			err = syncDir(filepath.Dir(f.path))
		}
		f.f = nil
		o.open--
		if err != nil {
			err = fmt.Errorf("archive: close %s: %w", f.path, err)
			o.log.Error("closing archive file failed; recent data may not be on disk", "path", f.path, "err", err)
		}
	}
	if !f.broken {
		delete(o.files, f.key)
		f.gone = true
		o.stateDirty = true
	}
	return err
}

// closeIdle closes the files (not in the current batch) last written before
// now - idle_timeout.
func (o *output) closeIdle(now time.Time) {
	if o.s.idle <= 0 {
		return
	}
	for _, f := range o.files {
		if f.f != nil && !f.inBatch && now.Sub(f.lastWrite) >= o.s.idle {
			o.closeFile(f)
		}
	}
}

// evict closes the least recently written files (not in the current batch)
// until at most limit are open.
func (o *output) evict(limit int) {
	for o.open > max(limit, 0) {
		var lru *file
		for _, f := range o.files {
			if f.f != nil && !f.inBatch && (lru == nil || f.lastWrite.Before(lru.lastWrite)) {
				lru = f
			}
		}
		if lru == nil {
			return
		}
		o.closeFile(lru)
	}
}
