package tail

import (
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/bmatcuk/doublestar/v4"
)

// Bounds of one expansion of the patterns.
const (
	maxDepth      = 32        // directories below a pattern's fixed prefix
	maxDirEntries = 1_000_000 // directory entries examined per scan (and per directory)
)

// expansion is the result of expanding the patterns once.
type expansion struct {
	files []string        // regular files (or symlinks) matching a pattern and no exclude, sorted, unique
	dirs  map[string]bool // directories visited: the ones to watch for new files
	// errs are the failures met on the way (a directory that cannot be
	// read, a fixed prefix that is not a directory), keyed by path.
	errs map[string]error
	// truncated is set when the walk stopped at maxDirEntries.
	truncated bool
}

// expand walks the directories the patterns can match. Symbolic links to
// files are returned like files; symbolic links to directories are not
// followed below a pattern's fixed prefix (no cycles), though the prefix
// itself may contain them. A missing fixed prefix is not an error: the
// directory may appear later.
func expand(patterns, exclude []string) *expansion {
	x := &expansion{dirs: make(map[string]bool), errs: make(map[string]error)}
	seen := make(map[string]bool)
	budget := maxDirEntries
	for _, p := range patterns {
		base, rest := doublestar.SplitPattern(p)
		if rest == "" {
			continue
		}
		fi, err := os.Stat(base)
		if err != nil {
			if !isNotExist(err) {
				x.errs[base] = err
			}
			continue
		}
		if !fi.IsDir() {
			x.errs[base] = &fs.PathError{Op: "glob", Path: base, Err: syscall.ENOTDIR}
			continue
		}
		w := walker{x: x, pattern: rest, exclude: exclude, seen: seen, budget: &budget}
		w.deep = strings.Contains(rest, "**") || strings.ContainsAny(rest, "{")
		w.segs = strings.Split(rest, "/")
		w.walk(base, "", 0)
	}
	slices.Sort(x.files)
	return x
}

type walker struct {
	x       *expansion
	pattern string   // relative to the walk's base
	segs    []string // pattern's path segments
	deep    bool     // the pattern can match at any depth (** or alternatives)
	exclude []string
	seen    map[string]bool
	budget  *int
}

// walk visits dir (rel is its path relative to the base, "" for the base).
func (w *walker) walk(dir, rel string, depth int) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !isNotExist(err) {
			w.x.errs[dir] = err
		}
		return
	}
	w.x.dirs[dir] = true
	for _, e := range entries {
		if *w.budget <= 0 {
			w.x.truncated = true
			return
		}
		*w.budget--
		name := e.Name()
		full := path.Join(dir, name)
		r := name
		if rel != "" {
			r = rel + "/" + name
		}
		if e.IsDir() {
			if depth+1 < maxDepth && w.mayDescend(r, depth+1) {
				w.walk(full, r, depth+1)
			}
			continue
		}
		if !e.Type().IsRegular() && e.Type()&fs.ModeSymlink == 0 {
			continue // FIFOs, sockets, devices
		}
		if w.seen[full] || !doublestar.MatchUnvalidated(w.pattern, r) || w.excluded(full) {
			continue
		}
		w.seen[full] = true
		w.x.files = append(w.x.files, full)
	}
}

// mayDescend reports whether a directory at relative path r (depth
// segments) can hold matches.
func (w *walker) mayDescend(r string, depth int) bool {
	if w.deep {
		return true
	}
	if depth >= len(w.segs) {
		return false
	}
	return doublestar.MatchUnvalidated(strings.Join(w.segs[:depth], "/"), r)
}

func (w *walker) excluded(full string) bool {
	for _, p := range w.exclude {
		if doublestar.MatchUnvalidated(p, full) {
			return true
		}
	}
	return false
}
