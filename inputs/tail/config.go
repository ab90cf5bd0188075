package tail

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/sluicelog/sluice/internal/conf"
)

// Limits of the configuration values.
const (
	// MaxLineBytesLimit is the largest accepted max_line_bytes and
	// multiline.max_bytes (16 MiB).
	MaxLineBytesLimit = 16 << 20
	maxOpenFilesLimit = 1 << 20
	minPollInterval   = 10 * time.Millisecond
	maxPaths          = 1024
)

// Config is the body of an `input "tail" "NAME" { ... }` block. Sizes and
// durations stay strings as written; New converts and validates them.
type Config struct {
	// Paths are the files to follow, as glob patterns: `*`, `?`, `[a-z]`,
	// `{a,b}` and `**` (any number of directories). Relative patterns are
	// relative to the working directory. At least one.
	Paths []string `hcl:"paths"`
	// Exclude removes matching paths (same syntax, matched against the
	// whole path) from those Paths found.
	Exclude []string `hcl:"exclude,optional"`
	// Stream is the stream type given to every event. Default "file".
	Stream string `hcl:"stream,optional"`
	// StartAt is where a file never seen before is read from when it is
	// found at startup: "beginning" (default) or "end" (after its last
	// complete line). Files that appear while Sluice runs, and successors
	// of a rotated file, are always read from the beginning; files with a
	// saved position resume there.
	StartAt string `hcl:"start_at,optional"`
	// MaxLineBytes bounds one line (without its newline). A longer line
	// is truncated to its first MaxLineBytes bytes, the rest up to the
	// newline is skipped, and it counts as dropped, reason "oversize".
	// Default "64KiB", at most 16 MiB.
	MaxLineBytes string `hcl:"max_line_bytes,optional"`
	// PollInterval is how often an open file is checked for new data,
	// rotation and truncation without a notification from inotify, and
	// the only way changes are seen where inotify is unavailable (NFS,
	// some FUSE and overlay filesystems). Default "250ms".
	PollInterval string `hcl:"poll_interval,optional"`
	// ScanInterval is how often Paths are expanded again to find new files
	// without a notification from inotify. Default "1s".
	ScanInterval string `hcl:"scan_interval,optional"`
	// RotateWait is how long a file that was renamed away or deleted is
	// still read after its last write, for lines its writer appends
	// before it reopens its log. Default "5s".
	RotateWait string `hcl:"rotate_wait,optional"`
	// MaxOpenFiles bounds the files held open at once. When more files
	// have data to read, files that reached their end give up their slot
	// in turn. Default 1024.
	MaxOpenFiles int `hcl:"max_open_files,optional"`
	// Multiline joins lines into records; nil: one event per line.
	Multiline *MultilineConfig `hcl:"multiline,block"`
}

// MultilineConfig is the `multiline` block: a record starts at a line
// matching Start and runs until the next such line.
type MultilineConfig struct {
	// Start is a regular expression (Go RE2 syntax) matching the first
	// line of a record, e.g. `^\d{4}-\d\d-\d\d` or `^\S` (continuation
	// lines of a Java stack trace begin with whitespace). Required.
	Start string `hcl:"start"`
	// MaxBytes bounds one record. A longer record is truncated to its
	// first MaxBytes bytes (counted as dropped, reason "oversize"); its
	// other lines are skipped. Default "1MiB", at most 16 MiB.
	MaxBytes string `hcl:"max_bytes,optional"`
	// Timeout emits the last record of a file once no new line arrived
	// for this long. Default "1s".
	Timeout string `hcl:"timeout,optional"`
}

// DefaultConfig returns a Config with every default set. Paths is empty:
// the block must set it.
func DefaultConfig() *Config {
	return &Config{
		Stream:       "file",
		StartAt:      "beginning",
		MaxLineBytes: "64KiB",
		PollInterval: "250ms",
		ScanInterval: "1s",
		RotateWait:   "5s",
		MaxOpenFiles: 1024,
	}
}

// Default values of the multiline block.
const (
	defaultMultilineMaxBytes = "1MiB"
	defaultMultilineTimeout  = "1s"
)

// settings is the validated, converted form of Config.
type settings struct {
	paths        []string // cleaned absolute patterns
	exclude      []string
	stream       string
	startAtEnd   bool
	maxLine      int
	poll         time.Duration
	scan         time.Duration
	rotateWait   time.Duration
	maxOpen      int
	multiline    *multiline // nil: one event per line
	maxBatch     int        // events per Emit
	maxBatchRaw  int        // raw bytes per Emit (soft)
	flushEvery   time.Duration
	readChunk    int // bytes per read(2)
	batchesInUse int // batches being built or emitted at once, all files together
}

// multiline is the validated multiline block.
type multiline struct {
	start    *regexp.Regexp
	maxBytes int
	timeout  time.Duration
}

// validate converts cfg into settings, reporting every bad attribute as a
// *conf.FieldError (joined).
func validate(cfg *Config) (*settings, error) {
	if cfg == nil {
		return nil, errors.New("tail: nil config")
	}
	var errs []error
	s := &settings{
		stream:       cfg.Stream,
		maxOpen:      cfg.MaxOpenFiles,
		maxBatch:     256,
		maxBatchRaw:  1 << 20,
		flushEvery:   250 * time.Millisecond,
		readChunk:    128 << 10,
		batchesInUse: 8,
	}
	if len(cfg.Paths) == 0 {
		errs = append(errs, conf.Field("paths", errors.New("at least one glob pattern is required")))
	}
	if len(cfg.Paths) > maxPaths {
		errs = append(errs, conf.Field("paths", fmt.Errorf("%d patterns; at most %d", len(cfg.Paths), maxPaths)))
	}
	seen := make(map[string]bool)
	for _, p := range cfg.Paths {
		c, err := cleanPattern(p)
		if err != nil {
			errs = append(errs, conf.Field("paths", err))
			continue
		}
		if seen[c] {
			errs = append(errs, conf.Field("paths", fmt.Errorf("pattern %q listed twice", p)))
			continue
		}
		seen[c] = true
		s.paths = append(s.paths, c)
	}
	for _, p := range cfg.Exclude {
		c, err := cleanPattern(p)
		if err != nil {
			errs = append(errs, conf.Field("exclude", err))
			continue
		}
		s.exclude = append(s.exclude, c)
	}
	if s.stream == "" {
		errs = append(errs, conf.Field("stream", errors.New("must not be empty")))
	}
	switch cfg.StartAt {
	case "beginning":
	case "end":
		s.startAtEnd = true
	default:
		errs = append(errs, conf.Field("start_at", fmt.Errorf("unknown value %q (want \"beginning\" or \"end\")", cfg.StartAt)))
	}
	if n, err := parseLimit(cfg.MaxLineBytes); err != nil {
		errs = append(errs, conf.Field("max_line_bytes", err))
	} else {
		s.maxLine = n
	}
	durations := []struct {
		field, val string
		dst        *time.Duration
		min        time.Duration
	}{
		{"poll_interval", cfg.PollInterval, &s.poll, minPollInterval},
		{"scan_interval", cfg.ScanInterval, &s.scan, minPollInterval},
		{"rotate_wait", cfg.RotateWait, &s.rotateWait, 0},
	}
	for _, d := range durations {
		v, err := conf.ParseDuration(d.val)
		switch {
		case err != nil:
			errs = append(errs, conf.Field(d.field, err))
		case v < d.min:
			errs = append(errs, conf.Field(d.field, fmt.Errorf("%q is too short (at least %s)", d.val, d.min)))
		default:
			*d.dst = v
		}
	}
	if s.maxOpen < 1 || s.maxOpen > maxOpenFilesLimit {
		errs = append(errs, conf.Field("max_open_files", fmt.Errorf("%d is out of range (want 1 to %d)", s.maxOpen, maxOpenFilesLimit)))
	}
	if ml := cfg.Multiline; ml != nil {
		m := &multiline{}
		if ml.Start == "" {
			errs = append(errs, conf.Field("multiline.start", errors.New("must not be empty")))
		} else if re, err := regexp.Compile(ml.Start); err != nil {
			errs = append(errs, conf.Field("multiline.start", fmt.Errorf("invalid regular expression: %w", err)))
		} else {
			m.start = re
		}
		maxBytes := ml.MaxBytes
		if maxBytes == "" {
			maxBytes = defaultMultilineMaxBytes
		}
		if n, err := parseLimit(maxBytes); err != nil {
			errs = append(errs, conf.Field("multiline.max_bytes", err))
		} else {
			m.maxBytes = n
		}
		timeout := ml.Timeout
		if timeout == "" {
			timeout = defaultMultilineTimeout
		}
		if d, err := conf.ParseDuration(timeout); err != nil {
			errs = append(errs, conf.Field("multiline.timeout", err))
		} else if d < minPollInterval {
			errs = append(errs, conf.Field("multiline.timeout", fmt.Errorf("%q is too short (at least %s)", timeout, minPollInterval)))
		} else {
			m.timeout = d
		}
		s.multiline = m
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// parseLimit parses a line or record size limit: 1 byte to 16 MiB.
func parseLimit(v string) (int, error) {
	n, err := conf.ParseSize(v)
	if err != nil {
		return 0, err
	}
	if n < 1 || n > MaxLineBytesLimit {
		return 0, fmt.Errorf("%q is out of range (want 1 byte to 16MiB)", v)
	}
	return int(n), nil
}

// cleanPattern checks that p is a valid glob pattern and returns it
// absolute (relative to the working directory) and cleaned.
func cleanPattern(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty pattern")
	}
	if !filepath.IsAbs(p) {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("pattern %q: %w", p, err)
		}
		p = abs
	}
	c := filepath.ToSlash(filepath.Clean(p))
	if !doublestar.ValidatePattern(c) {
		return "", fmt.Errorf("pattern %q is not a valid glob", p)
	}
	return c, nil
}
