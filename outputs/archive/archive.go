// Package archive is the "archive" output: it appends events to files whose
// path is rendered from the event time and fields
// ("archive/{stream}/%Y/%m/%d/%H.log.gz"), gzip-compressed or plain.
//
// # Files
//
// Each Write encodes the batch (format "raw", "rfc5424" or "json", one event
// per line) and appends, per target file, one complete gzip member (or, for
// large batches, a few members compressed in parallel) or the plain bytes,
// with one write(2) per file per batch (per 4 MiB of encoded events). The
// concatenation of members is a standard gzip file: zcat, gzip -t and any
// multistream reader read it whole.
//
// Files stay open until idle_timeout passes without a write, until more than
// max_open_files are open (the least recently written is closed), until they
// reach max_file_size, or until Close. Events for an earlier hour go to the
// earlier file, which is reopened for append if it was closed.
//
// # Durability
//
// Write returns nil once write(2) accepted every byte of the batch: the
// data then survives a crash of the process (kill -9) but not of the
// operating system until the file (and, for a file it created, its
// directory) is fsynced, which happens when it is rotated, closed as idle or
// LRU, and at Close.
//
// If a write fails (disk full, a path component that is a file, …), Write
// truncates every file it appended to in this call back to its size before
// the call, so the router's retry of the batch does not duplicate a part of
// it, and returns the error. If even that truncation fails, the file is
// closed and truncated when next opened (or by crash recovery).
//
// # Crash recovery
//
// A state file in the output's state directory lists every file that is
// open (rewritten atomically, and fsynced, before a newly opened file is
// first written). After a crash such a file may end in a torn gzip member
// (or a partial line for compression "none"). Open reads each listed file
// from the point where it was opened (known good) and truncates it after the
// last complete, CRC-valid gzip member (or after the last newline), logging
// the number of bytes removed; a file with no valid data at all is renamed to
// NAME.corrupt-<unix seconds> instead. Nothing before the torn part is lost,
// and appending resumes after it. A batch that was torn by the crash was not
// acknowledged, so the router delivers it again (at least once).
package archive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/outputs/format"
	"github.com/sluicelog/sluice/router/event"
)

// Config is the body of an `output "archive" "NAME" { … }` block.
type Config struct {
	// Path is the file path template, relative to the working directory
	// unless absolute: strftime directives %Y %m %d %H %M %S %j %y %% on the
	// event time (in Timezone) and {field} placeholders for stream, input,
	// host, app, facility, severity, procid, msgid. Placeholder values are
	// made safe as one path component: "/", NUL and control bytes become "_",
	// a leading "." becomes "_", an empty value (or an unknown facility or
	// severity) becomes "-", and values are cut to 128 bytes. Required.
	Path string `hcl:"path"`
	// Compression is "gzip" (default) or "none".
	Compression string `hcl:"compression,optional"`
	// Level is the gzip level, 1 (fastest, default) to 9.
	Level int `hcl:"level,optional"`
	// Format is the line encoding: "raw" (default), "rfc5424" or "json".
	Format string `hcl:"format,optional"`
	// Timezone for the strftime directives: an IANA name, "UTC" (default)
	// or "Local".
	Timezone string `hcl:"timezone,optional"`
	// MaxFileSize rotates a file once it has reached this size on disk
	// (compressed size for gzip), checked after each batch, so a file can
	// exceed it by one batch. Parts are numbered before the extension:
	// 13.log.gz, 13.1.log.gz, 13.2.log.gz … (13.log → 13.1.log; a name
	// without a dot gets ".1"). "0" or empty: unlimited (default).
	MaxFileSize string `hcl:"max_file_size,optional"`
	// IdleTimeout closes (and fsyncs) a file not written for this long.
	// Default "1m"; "0" never closes files for idleness.
	IdleTimeout string `hcl:"idle_timeout,optional"`
	// MaxOpenFiles bounds the open files; beyond it the least recently
	// written is closed. Default 64. One batch that targets more files than
	// this keeps them all open until it is written.
	MaxOpenFiles int `hcl:"max_open_files,optional"`
	// FileMode is the octal permission of new files, default "0640" (before
	// the umask). New directories get the same bits plus x wherever r is
	// set (0640 → 0750).
	FileMode string `hcl:"file_mode,optional"`
}

// DefaultConfig returns a Config with every optional attribute at its
// default.
//
// Level 1 is the default: with klauspost/compress on 258-byte RFC 5424
// lines it needs less than half the CPU of level 6 (3.1 vs 6.7 ms per MiB)
// for files about 10% larger (19.7% vs 17.9% of the input), and level 6
// on one core (~160 MB/s, ~600k events/s) would make the archive the
// bottleneck of a 2-core router at the throughput it is meant for.
func DefaultConfig() *Config {
	return &Config{
		Compression:  "gzip",
		Level:        1,
		Format:       "raw",
		Timezone:     "UTC",
		MaxFileSize:  "0",
		IdleTimeout:  "1m",
		MaxOpenFiles: 64,
		FileMode:     "0640",
	}
}

// settings is a validated Config.
type settings struct {
	tmpl    *template
	pathSrc string // the path template as written
	gzip    bool
	level   int
	format  format.Format
	loc     *time.Location
	maxSize int64 // 0: unlimited
	idle    time.Duration
	maxOpen int
	mode    os.FileMode
	dirMode os.FileMode
}

// parseConfig validates cfg; errors are *conf.FieldError joined.
func parseConfig(cfg *Config) (settings, error) {
	var s settings
	var errs []error
	add := func(field string, err error) {
		if err != nil {
			errs = append(errs, conf.Field(field, err))
		}
	}
	var err error
	s.pathSrc = cfg.Path
	s.tmpl, err = compileTemplate(cfg.Path)
	add("path", err)

	switch cfg.Compression {
	case "gzip", "":
		s.gzip = true
	case "none":
	default:
		add("compression", fmt.Errorf("unknown compression %q (want \"gzip\" or \"none\")", cfg.Compression))
	}
	s.level = cfg.Level
	if s.level < gzip.BestSpeed || s.level > gzip.BestCompression {
		add("level", fmt.Errorf("gzip level %d out of range (want 1 to 9)", cfg.Level))
	}
	f := cfg.Format
	if f == "" {
		f = "raw"
	}
	s.format, err = format.Parse(f)
	add("format", err)

	switch cfg.Timezone {
	case "", "UTC":
		s.loc = time.UTC
	case "Local":
		s.loc = time.Local
	default:
		s.loc, err = time.LoadLocation(cfg.Timezone)
		if err != nil {
			add("timezone", fmt.Errorf("unknown time zone %q (want an IANA name such as \"Europe/Berlin\", \"UTC\" or \"Local\"): %w", cfg.Timezone, err))
		}
	}

	if ms := strings.TrimSpace(cfg.MaxFileSize); ms != "" && ms != "0" {
		s.maxSize, err = conf.ParseSize(ms)
		add("max_file_size", err)
	}

	idle := cfg.IdleTimeout
	if strings.TrimSpace(idle) == "" {
		idle = "1m"
	}
	if strings.TrimSpace(idle) != "0" {
		s.idle, err = conf.ParseDuration(idle)
		add("idle_timeout", err)
	}

	s.maxOpen = cfg.MaxOpenFiles
	if s.maxOpen < 1 {
		add("max_open_files", fmt.Errorf("must be at least 1, got %d", cfg.MaxOpenFiles))
	}

	mode := cfg.FileMode
	if mode == "" {
		mode = "0640"
	}
	m, err := strconv.ParseUint(mode, 8, 32)
	switch {
	case err != nil:
		add("file_mode", fmt.Errorf("invalid file mode %q (want octal permission bits such as \"0640\")", cfg.FileMode))
	case m > 0o777:
		add("file_mode", fmt.Errorf("file mode %q has bits beyond 0777", cfg.FileMode))
	case m&0o600 != 0o600:
		add("file_mode", fmt.Errorf("file mode %q must let the owner read and write", cfg.FileMode))
	}
	s.mode = os.FileMode(m)
	s.dirMode = s.mode | (s.mode&0o444)>>2

	return s, errors.Join(errs...)
}

// New validates cfg and returns the archive output. It has no side effects:
// files, directories and the background goroutine are created by Open and
// Write. Config errors are *conf.FieldError values (Field is the attribute
// name) joined with errors.Join.
func New(cfg *Config, env outputs.Env) (outputs.Output, error) {
	s, err := parseConfig(cfg)
	if err != nil {
		return nil, err
	}
	return newOutput(s, env), nil
}

// Claims implements outputs.Claimer: two archive outputs with the same
// (cleaned) path template would write the same files. Templates that only
// overlap, or the same path written once relative and once absolute, are not
// detected.
func (o *output) Claims() []string {
	return []string{fmt.Sprintf("archive files %q", filepath.Clean(o.s.pathSrc))}
}

func newOutput(s settings, env outputs.Env) *output {
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &output{
		s:         s,
		log:       log,
		now:       time.Now,
		writeFile: (*os.File).Write,
		files:     make(map[string]*file),
	}
	if env.StateDir != "" {
		o.statePath = filepath.Join(env.StateDir, stateFileName)
	}
	if s.gzip {
		o.z = newCompressor(s.level)
	}
	return o
}

// chunkSize bounds the encoded bytes buffered for one file before they are
// compressed and written, which bounds memory for huge batches.
const chunkSize = 4 << 20

// cacheSize is the number of recently rendered paths Write remembers.
const cacheSize = 4

// output implements outputs.Output and outputs.Opener.
type output struct {
	s         settings
	log       *slog.Logger
	statePath string // "" disables crash recovery

	// Test hooks.
	now       func() time.Time
	writeFile func(f *os.File, b []byte) (int, error)

	mu         sync.Mutex // guards everything below; held for a whole Write
	files      map[string]*file
	open       int  // files with an open descriptor
	closed     bool // Close was called
	stateGrew  bool // a file was opened since the state file was written
	stateDirty bool // the state file lists files that are closed now
	stop, done chan struct{}

	// Scratch reused across Writes.
	cache     [cacheSize]cacheEntry
	cacheNext int
	batch     []*file
	pathBuf   []byte
	enc       []byte
	out       []byte
	z         *compressor
}

// file is one archive file, keyed by its rendered path.
type file struct {
	key  string   // rendered template
	path string   // file written: key, or a numbered part of it
	abs  string   // absolute path, for the state file
	f    *os.File // nil when closed
	size int64    // bytes in the file that are ours and complete
	base int64    // size when opened: recovery starts here
	// broken: a failed write could not be undone; the file may hold a
	// partial member after size. It stays listed in the state file and is
	// truncated to size when reopened.
	broken    bool
	gone      bool // removed from files (cache entries must not use it)
	created   bool // this output created the file: fsync its directory on close
	lastWrite time.Time

	// Per Write.
	idx        []int32 // indexes of this batch's events for this file
	inBatch    bool
	batchStart int64
}

// cacheEntry remembers that events whose time falls in [lo, hi) and whose
// template fields equal ev's render to f's path.
type cacheEntry struct {
	f      *file
	lo, hi int64
	ev     *event.Event
}

// Open repairs the files a crash left open (see the package doc), then
// starts the idle-file timer. An error (a listed file that cannot be read,
// truncated or renamed) means recovery did not complete; the state file is
// kept so the next start tries again.
func (o *output) Open(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errors.New("archive: Open after Close")
	}
	if o.statePath == "" {
		o.log.Warn("no state directory: crash recovery of torn archive files is disabled")
	} else if err := o.recoverAll(ctx); err != nil {
		return err
	}
	o.startLocked()
	return nil
}

// startLocked starts the idle-close goroutine once.
func (o *output) startLocked() {
	if o.stop != nil || o.s.idle == 0 {
		return
	}
	o.stop, o.done = make(chan struct{}), make(chan struct{})
	tick := min(max(o.s.idle/4, 10*time.Millisecond), 15*time.Second)
	go o.idleLoop(tick)
}

func (o *output) idleLoop(every time.Duration) {
	defer close(o.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
			o.mu.Lock()
			if !o.closed {
				o.closeIdle(o.now())
				if o.stateDirty {
					if err := o.saveState(); err != nil {
						o.log.Warn("cannot update state file", "err", err)
					}
				}
			}
			o.mu.Unlock()
		}
	}
}

// Write appends evs to their files; see the package documentation for what
// a nil error guarantees and how a failed batch is undone.
func (o *output) Write(ctx context.Context, evs []*event.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errors.New("archive: Write after Close")
	}
	o.startLocked()
	if len(evs) == 0 {
		return nil
	}

	// Pass 1: the file of every event.
	batch := o.batch[:0]
	for i, ev := range evs {
		f := o.resolve(ev)
		if !f.inBatch {
			f.inBatch = true
			f.idx = f.idx[:0]
			batch = append(batch, f)
		}
		f.idx = append(f.idx, int32(i))
	}
	o.batch = batch
	defer func() {
		for _, f := range batch {
			f.inBatch = false
		}
		clear(o.batch)
	}()

	// Open what is closed, making room first, and record the open set
	// before anything is written to a newly opened file.
	need := 0
	for _, f := range batch {
		if f.f == nil {
			need++
		}
	}
	rejected := 0
	var rejectErrs []error
	if need > 0 {
		o.evict(o.s.maxOpen - need)
		var errs []error
		kept := batch[:0]
		for _, f := range batch {
			if f.f == nil {
				if err := o.openFile(f); err != nil {
					if unwritablePath(err) {
						// No retry can create this path: drop its events,
						// write the rest, and forget the file.
						rejected += len(f.idx)
						rejectErrs = append(rejectErrs, err)
						f.inBatch, f.gone = false, true
						delete(o.files, f.key)
						continue
					}
					errs = append(errs, err)
				}
			}
			kept = append(kept, f)
		}
		batch, o.batch = kept, kept
		if len(errs) > 0 {
			return fmt.Errorf("archive: %w", errors.Join(errs...))
		}
	}
	if o.stateGrew {
		if err := o.saveState(); err != nil {
			return fmt.Errorf("archive: record open files before writing: %w", err)
		}
	}

	// Pass 2: encode, compress and append, file by file.
	for i, f := range batch {
		f.batchStart = f.size
		if err := o.appendBatch(f, evs); err != nil {
			return errors.Join(err, o.rollback(batch[:i+1]))
		}
	}

	now := o.now()
	for _, f := range batch {
		f.lastWrite = now
		if o.s.maxSize > 0 && f.size >= o.s.maxSize {
			o.closeFile(f) // rotate: the next event for this key opens the next part
		}
		f.inBatch = false
	}
	o.closeIdle(now)
	o.evict(o.s.maxOpen)
	if rejected > 0 {
		return &outputs.PartialError{Rejected: rejected, Err: fmt.Errorf("archive: %w", errors.Join(rejectErrs...))}
	}
	return nil
}

// unwritablePath reports errors that no retry can fix for a path rendered
// from an event (too long, a directory, invalid). Other errors (a
// permission, a full disk, a file where a directory should be) may be fixed
// by an operator, so they are retried.
func unwritablePath(err error) bool {
	return errors.Is(err, syscall.ENAMETOOLONG) || errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EINVAL)
}

// resolve returns the file for ev, creating (not opening) it if needed.
func (o *output) resolve(ev *event.Event) *file {
	u := ev.Time.Unix()
	for i := range o.cache {
		c := &o.cache[i]
		if c.f != nil && !c.f.gone && u >= c.lo && u < c.hi && o.sameFields(ev, c.ev) {
			return c.f
		}
	}
	o.pathBuf = capComponents(o.s.tmpl.render(o.pathBuf[:0], ev, o.s.loc))
	f := o.files[string(o.pathBuf)]
	if f == nil {
		f = &file{key: string(o.pathBuf)}
		o.files[f.key] = f
	}
	lo, hi := o.s.tmpl.timeRange(ev.Time, o.s.loc)
	o.cache[o.cacheNext] = cacheEntry{f: f, lo: lo, hi: hi, ev: ev}
	o.cacheNext = (o.cacheNext + 1) % cacheSize
	return f
}

func (o *output) sameFields(a, b *event.Event) bool {
	for _, fl := range o.s.tmpl.used {
		if fieldValue(a, fl) != fieldValue(b, fl) {
			return false
		}
	}
	return true
}

// appendBatch writes f's events of this batch. On error f.size counts the
// bytes that did reach the file.
func (o *output) appendBatch(f *file, evs []*event.Event) error {
	for j := 0; j < len(f.idx); {
		o.enc = o.enc[:0]
		for ; j < len(f.idx) && len(o.enc) < chunkSize; j++ {
			o.enc = o.s.format.Append(o.enc, evs[f.idx[j]])
			o.enc = append(o.enc, '\n')
		}
		data := o.enc
		if o.z != nil {
			o.out = o.z.compress(o.out[:0], o.enc)
			data = o.out
		}
		n, err := o.writeFile(f.f, data)
		f.size += int64(n)
		if err == nil && n < len(data) {
			err = errors.New("short write")
		}
		if err != nil {
			return fmt.Errorf("archive: write %s: %w", f.path, err)
		}
	}
	return nil
}

// rollback truncates each file back to its size before this Write. A file
// that cannot be truncated is closed and marked broken.
func (o *output) rollback(files []*file) error {
	var errs []error
	for _, f := range files {
		if f.f == nil || f.size == f.batchStart {
			continue
		}
		if err := f.f.Truncate(f.batchStart); err != nil {
			errs = append(errs, fmt.Errorf("archive: undo partial write to %s: %w", f.path, err))
			o.log.Error("cannot undo a failed write; the file will be truncated when reopened",
				"path", f.path, "offset", f.batchStart, "err", err)
			f.f.Close()
			f.f = nil
			o.open--
			f.broken = true
		}
		f.size = f.batchStart
	}
	return errors.Join(errs...)
}

// Close closes (and fsyncs) every file, records that none is open and stops
// the timer. It returns the errors of the fsyncs and closes.
func (o *output) Close() error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	stop, done := o.stop, o.done
	o.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	var errs []error
	for _, f := range o.files {
		if f.f != nil {
			errs = append(errs, o.closeFile(f))
		}
	}
	if o.stateDirty || o.stateGrew {
		errs = append(errs, o.saveState())
	}
	return errors.Join(errs...)
}
