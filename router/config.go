package router

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/sluicelog/sluice/inputs"
	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/rules"
	"github.com/sluicelog/sluice/spool"
)

// Registry lists the plugin types a configuration may use, keyed by the first
// label of `input "TYPE" "NAME"` / `output "TYPE" "NAME"`. cmd/sluice builds
// it explicitly; there is no global registry.
type Registry struct {
	Inputs  map[string]inputs.Type
	Outputs map[string]outputs.Type
	// Logger is handed to the plugins Load constructs, with component,
	// input/output and type attributes added. Nil discards their logs.
	Logger *slog.Logger

	metrics *Metrics // set by Router.Reload: the running router's metrics
}

// Config is a loaded, fully validated configuration: every plugin is decoded
// and constructed (without side effects) and every route compiled. It is
// immutable once returned by Load.
type Config struct {
	// Files holds the source of each loaded file, for WriteDiagnostics.
	Files map[string][]byte

	DataDir         string        // data_dir: state and spool live below it
	MemoryLimit     int64         // memory_limit in bytes; 0 = Go runtime defaults
	ShutdownTimeout time.Duration // how long queues may drain on shutdown
	AdminListen     string        // admin.listen; "" = no admin listener
	SpoolDir        string        // spool.dir

	Inputs  []*InputSpec
	Outputs []*OutputSpec
	Routes  []RouteSpec

	// Table is the compiled routing table; its output indices index Outputs.
	Table *rules.Table

	metrics    *Metrics
	spoolFsync spool.FsyncPolicy
}

// InputSpec is one constructed `input` block.
type InputSpec struct {
	Type, Name string
	Input      inputs.Input
	Metrics    *inputs.Metrics
	StateDir   string

	config any // the decoded plugin config, compared on reload
}

// OutputSpec is one constructed `output` block with its router-owned settings.
type OutputSpec struct {
	Type, Name string
	Output     outputs.Output
	Queue      QueueConfig
	Batch      BatchConfig
	Retry      RetryConfig
	StateDir   string

	config any // the decoded plugin config, compared on reload
}

// RouteSpec is the source-level description of a compiled route, for logs
// and metrics labels.
type RouteSpec struct {
	Name     string
	Outputs  []string
	Drop     bool
	Continue bool
}

// QueueConfig is the `queue` block of an output.
type QueueConfig struct {
	Type      string // "memory" | "disk"
	MaxEvents int    // memory: capacity in events
	// MaxBytes is the capacity: for memory queues in bytes as counted by
	// eventSize (raw bytes + estimated overhead), for disk queues in bytes
	// of segment files.
	MaxBytes int64
	WhenFull string            // "block" | "drop_newest"
	Fsync    spool.FsyncPolicy // disk: fsync policy (queue.fsync, else spool.fsync)
	Dir      string            // disk: spool.dir/<output name>
	// Replay is the disk queue's delivery order when it holds a backlog:
	// "fifo", or "live_first" (new events first, the backlog behind them
	// at BacklogShare of the delivered events).
	Replay       string
	BacklogShare float64
}

// BatchConfig is the `batch` block of an output: the worker hands the output
// up to MaxEvents events or MaxBytes bytes (as counted by eventSize), waiting at most MaxWait for a
// batch to fill once it has its first event.
type BatchConfig struct {
	MaxEvents int
	MaxBytes  int64
	MaxWait   time.Duration
}

// RetryConfig is the `retry` block of an output: exponential backoff with
// equal jitter (a random delay between half and all of the backoff) from Initial up to Max; MaxAttempts 0 retries until shutdown.
type RetryConfig struct {
	Initial     time.Duration
	Max         time.Duration
	MaxAttempts int
}

// Defaults for router-owned settings; the README's reference lists them.
const (
	defaultDataDir         = "data"
	defaultShutdownTimeout = 15 * time.Second
	defaultMemoryLimit     = 48 << 20
	maxQueueEvents         = 10_000_000 // the ring is preallocated: 8 bytes a slot
	defaultQueueEvents     = 50_000
	defaultQueueBytes      = 8 << 20 // memory queues
	defaultDiskQueueBytes  = 1 << 30
	defaultBacklogShare    = 0.2
	defaultBatchEvents     = 4096
	defaultBatchBytes      = 1 << 20
	defaultBatchWait       = 200 * time.Millisecond
	defaultRetryInitial    = 100 * time.Millisecond
	defaultRetryMax        = 30 * time.Second
)

type fileSchema struct {
	DataDir         *string        `hcl:"data_dir,optional"`
	MemoryLimit     *string        `hcl:"memory_limit,optional"`
	ShutdownTimeout *string        `hcl:"shutdown_timeout,optional"`
	Unmatched       *hcl.Attribute `hcl:"unmatched,optional"`
	Admin           *adminBlock    `hcl:"admin,block"`
	Spool           *spoolBlock    `hcl:"spool,block"`
	Inputs          []inputBlock   `hcl:"input,block"`
	Outputs         []outputBlock  `hcl:"output,block"`
	Routes          []routeBlock   `hcl:"route,block"`
	Body            hcl.Body       `hcl:",body"`
}

type adminBlock struct {
	Listen string   `hcl:"listen"`
	Body   hcl.Body `hcl:",body"`
}

type spoolBlock struct {
	Dir   *string  `hcl:"dir,optional"`
	Fsync *string  `hcl:"fsync,optional"`
	Body  hcl.Body `hcl:",body"`
}

type inputBlock struct {
	Type     string    `hcl:"type,label"`
	Name     string    `hcl:"name,label"`
	Body     hcl.Body  `hcl:",remain"`
	DefRange hcl.Range `hcl:",def_range"`
}

type outputBlock struct {
	Type     string      `hcl:"type,label"`
	Name     string      `hcl:"name,label"`
	Queue    *queueBlock `hcl:"queue,block"`
	Batch    *batchBlock `hcl:"batch,block"`
	Retry    *retryBlock `hcl:"retry,block"`
	Body     hcl.Body    `hcl:",remain"`
	DefRange hcl.Range   `hcl:",def_range"`
}

type queueBlock struct {
	Type         *string  `hcl:"type,optional"`
	Fsync        *string  `hcl:"fsync,optional"`
	MaxEvents    *int     `hcl:"max_events,optional"`
	MaxSize      *string  `hcl:"max_size,optional"`
	WhenFull     *string  `hcl:"when_full,optional"`
	Replay       *string  `hcl:"replay,optional"`
	BacklogShare *float64 `hcl:"backlog_share,optional"`
	Body         hcl.Body `hcl:",body"`
}

type batchBlock struct {
	MaxEvents *int     `hcl:"max_events,optional"`
	MaxBytes  *string  `hcl:"max_bytes,optional"`
	MaxWait   *string  `hcl:"max_wait,optional"`
	Body      hcl.Body `hcl:",body"`
}

type retryBlock struct {
	Initial     *string  `hcl:"initial,optional"`
	Max         *string  `hcl:"max,optional"`
	MaxAttempts *int     `hcl:"max_attempts,optional"`
	Body        hcl.Body `hcl:",body"`
}

type routeBlock struct {
	Name     string         `hcl:"name,label"`
	When     *hcl.Attribute `hcl:"when,optional"`
	To       *hcl.Attribute `hcl:"to,optional"`
	Continue *bool          `hcl:"continue,optional"`
	Drop     *bool          `hcl:"drop,optional"`
	DefRange hcl.Range      `hcl:",def_range"`
}

// LoadFile reads and loads one configuration file: see Load.
func LoadFile(path string, reg Registry) (*Config, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return &Config{Files: map[string][]byte{}}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read configuration",
			Detail:   err.Error(),
		}}
	}
	return Load(path, src, reg)
}

// Load parses, decodes and validates a configuration and constructs every
// plugin (without side effects). It reports every problem it finds, each
// with its source range; the returned Config is usable only when diags has
// no errors. The returned Config's Files is always set, for printing diags.
func Load(filename string, src []byte, reg Registry) (*Config, hcl.Diagnostics) {
	cfg := &Config{Files: map[string][]byte{filename: src}}
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return cfg, diags // nothing below is meaningful on a syntax error
	}
	ectx := evalContext()
	var fs fileSchema
	diags = append(diags, gohcl.DecodeBody(f.Body, ectx, &fs)...)
	m := reg.metrics
	if m == nil {
		m = newMetrics()
	}
	cfg.metrics = m

	cfg.DataDir = defaultDataDir
	if fs.DataDir != nil {
		cfg.DataDir = *fs.DataDir
	}
	cfg.MemoryLimit = defaultMemoryLimit
	if fs.MemoryLimit != nil {
		n, err := conf.ParseSize(*fs.MemoryLimit)
		if err == nil && n != 0 && n < 16<<20 {
			err = fmt.Errorf("must be 0 (Go runtime defaults) or at least 16MiB, got %d bytes", n)
		}
		diags = append(diags, fieldDiags(fs.Body, f.Body.MissingItemRange(), conf.Field("memory_limit", err))...)
		cfg.MemoryLimit = n
	}
	cfg.ShutdownTimeout = defaultShutdownTimeout
	if fs.ShutdownTimeout != nil {
		d, err := conf.ParseDuration(*fs.ShutdownTimeout)
		diags = append(diags, fieldDiags(fs.Body, f.Body.MissingItemRange(), conf.Field("shutdown_timeout", err))...)
		cfg.ShutdownTimeout = d
	}
	if fs.Admin != nil {
		cfg.AdminListen = fs.Admin.Listen
		if _, _, err := splitHostPort(fs.Admin.Listen); err != nil {
			diags = append(diags, prefixed("admin.", fieldDiags(fs.Admin.Body, fs.Admin.Body.MissingItemRange(), conf.Field("listen", err)))...)
		}
	}
	cfg.SpoolDir = filepath.Join(cfg.DataDir, "spool")
	cfg.spoolFsync = spool.FsyncPolicy{Every: time.Second}
	if fs.Spool != nil {
		if fs.Spool.Dir != nil {
			cfg.SpoolDir = *fs.Spool.Dir
		}
		if fs.Spool.Fsync != nil {
			p, err := spool.ParseFsync(*fs.Spool.Fsync)
			diags = append(diags, prefixed("spool.", fieldDiags(fs.Spool.Body, fs.Spool.Body.MissingItemRange(), conf.Field("fsync", err)))...)
			cfg.spoolFsync = p
		}
	}

	diags = append(diags, cfg.loadInputs(fs.Inputs, reg, ectx, m)...)
	outIndex, outDiags := cfg.loadOutputs(fs.Outputs, reg, ectx)
	diags = append(diags, outDiags...)
	diags = append(diags, cfg.loadRoutes(fs, outIndex)...)
	return cfg, tidy(diags)
}

// QueueBytes is the sum of every memory queue's max_size: what the queues
// may hold in memory at most, by their estimate.
func (cfg *Config) QueueBytes() int64 {
	var n int64
	for _, o := range cfg.Outputs {
		if o.Queue.Type == "memory" {
			n += o.Queue.MaxBytes
		}
	}
	return n
}

// tidy orders diagnostics by source position and removes HCL's follow-up
// "value must be known" error that repeats a failed function call.
func tidy(diags hcl.Diagnostics) hcl.Diagnostics {
	out := diags[:0]
	failed := map[hcl.Range]bool{}
	for _, d := range diags {
		if d.Subject != nil && d.Summary == "Error in function call" {
			failed[*d.Subject] = true
		}
	}
	for _, d := range diags {
		if d.Subject != nil && strings.Contains(d.Detail, "value must be known") && failed[*d.Subject] {
			continue
		}
		out = append(out, d)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Subject, out[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		case a.Start.Line != b.Start.Line:
			return a.Start.Line < b.Start.Line
		default:
			return a.Start.Column < b.Start.Column
		}
	})
	return out
}

// prefixed qualifies the "Invalid NAME" summaries of a nested block's errors.
func prefixed(prefix string, diags hcl.Diagnostics) hcl.Diagnostics {
	for _, d := range diags {
		if name, ok := strings.CutPrefix(d.Summary, "Invalid "); ok {
			d.Summary = "Invalid " + prefix + name
		}
	}
	return diags
}

func pluginLogger(l *slog.Logger, kind, name, typ string) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.With("component", kind, kind, name, "type", typ)
}

func (cfg *Config) loadInputs(blocks []inputBlock, reg Registry, ectx *hcl.EvalContext, m *Metrics) hcl.Diagnostics {
	var diags hcl.Diagnostics
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		if prev, dup := seen[b.Name]; dup {
			diags = append(diags, duplicate("input", b.Name, b.DefRange, prev))
			continue
		}
		seen[b.Name] = b.DefRange
		t, ok := reg.Inputs[b.Type]
		if !ok {
			diags = append(diags, unknownType("input", b.Type, keys(reg.Inputs), b.DefRange))
			continue
		}
		c := t.NewConfig()
		d := gohcl.DecodeBody(b.Body, ectx, c)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		spec := &InputSpec{
			Type: b.Type, Name: b.Name,
			Metrics:  m.forInput(b.Name),
			StateDir: filepath.Join(cfg.DataDir, "state", "input", b.Name),
		}
		in, err := t.Build(c, inputs.Env{
			Name:     b.Name,
			Logger:   pluginLogger(reg.Logger, "input", b.Name, b.Type),
			StateDir: spec.StateDir,
			Metrics:  spec.Metrics,
		})
		if err != nil {
			diags = append(diags, fieldDiags(b.Body, b.DefRange, err)...)
			continue
		}
		spec.Input, spec.config = in, c
		cfg.Inputs = append(cfg.Inputs, spec)
	}
	return diags
}

// loadOutputs returns the index of each output by "type.name"; outputs
// that failed to load map to -1, so routes naming them do not report a
// second, misleading "unknown output" error.
func (cfg *Config) loadOutputs(blocks []outputBlock, reg Registry, ectx *hcl.EvalContext) (map[string]int, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	index := map[string]int{} // "type.name" → index into cfg.Outputs, or -1 if broken
	seen := map[string]hcl.Range{}
	claimed := map[string]string{} // claim → output name
	for _, b := range blocks {
		if prev, dup := seen[b.Name]; dup {
			diags = append(diags, duplicate("output", b.Name, b.DefRange, prev))
			continue
		}
		seen[b.Name] = b.DefRange
		index[b.Type+"."+b.Name] = -1
		t, ok := reg.Outputs[b.Type]
		if !ok {
			diags = append(diags, unknownType("output", b.Type, keys(reg.Outputs), b.DefRange))
			continue
		}
		spec := &OutputSpec{Type: b.Type, Name: b.Name, StateDir: filepath.Join(cfg.DataDir, "state", "output", b.Name)}
		d := decodeQueue(b.Queue, &spec.Queue, cfg.spoolFsync)
		spec.Queue.Dir = filepath.Join(cfg.SpoolDir, b.Name)
		d = append(d, decodeBatch(b.Batch, &spec.Batch)...)
		d = append(d, decodeRetry(b.Retry, &spec.Retry)...)
		c := t.NewConfig()
		bodyDiags := gohcl.DecodeBody(b.Body, ectx, c)
		diags = append(diags, d...)
		diags = append(diags, bodyDiags...)
		if bodyDiags.HasErrors() {
			continue
		}
		out, err := t.Build(c, outputs.Env{Name: b.Name, Logger: pluginLogger(reg.Logger, "output", b.Name, b.Type), StateDir: spec.StateDir})
		if err != nil {
			diags = append(diags, fieldDiags(b.Body, b.DefRange, err)...)
			continue
		}
		if d.HasErrors() {
			continue
		}
		if c, ok := out.(outputs.Claimer); ok {
			for _, claim := range c.Claims() {
				if other, dup := claimed[claim]; dup {
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagError,
						Summary:  "Outputs share a destination",
						Detail:   fmt.Sprintf("Output %q writes to %s, as output %q does; two outputs writing the same files would corrupt each other.", b.Name, claim, other),
						Subject:  b.DefRange.Ptr(),
					})
				}
				claimed[claim] = b.Name
			}
		}
		spec.Output, spec.config = out, c
		index[b.Type+"."+b.Name] = len(cfg.Outputs)
		cfg.Outputs = append(cfg.Outputs, spec)
	}
	return index, diags
}

func decodeQueue(b *queueBlock, q *QueueConfig, spoolFsync spool.FsyncPolicy) hcl.Diagnostics {
	*q = QueueConfig{Type: "disk", MaxEvents: defaultQueueEvents, MaxBytes: defaultDiskQueueBytes, WhenFull: "block",
		Fsync: spoolFsync, Replay: "fifo", BacklogShare: defaultBacklogShare}
	if b == nil {
		return nil
	}
	var errs []error
	if b.Type != nil {
		q.Type = *b.Type
		switch q.Type {
		case "memory":
			q.MaxBytes = defaultQueueBytes
		case "disk":
		default:
			errs = append(errs, conf.Field("type", fmt.Errorf("unknown queue type %q (want \"memory\" or \"disk\")", q.Type)))
		}
	}
	if b.MaxEvents != nil {
		q.MaxEvents = *b.MaxEvents
		switch {
		case q.Type == "disk":
			errs = append(errs, conf.Field("max_events", errors.New(`only memory queues take max_events (queues are on disk unless type = "memory"); bound a disk queue with max_size`)))
		case q.MaxEvents < 1 || q.MaxEvents > maxQueueEvents:
			errs = append(errs, conf.Field("max_events", fmt.Errorf("must be between 1 and %d, got %d", maxQueueEvents, q.MaxEvents)))
		}
	}
	if b.MaxSize != nil {
		n, err := conf.ParseSize(*b.MaxSize)
		if err == nil && n < 1024 && q.Type != "disk" {
			err = fmt.Errorf("must be at least 1KiB, got %d bytes", n)
		}
		if err == nil && q.Type == "disk" && n < 1<<20 {
			err = fmt.Errorf("a disk queue needs at least 1MiB, got %d bytes", n)
		}
		errs = append(errs, conf.Field("max_size", err))
		q.MaxBytes = n
	}
	if b.WhenFull != nil {
		q.WhenFull = *b.WhenFull
		if q.WhenFull != "block" && q.WhenFull != "drop_newest" {
			errs = append(errs, conf.Field("when_full", fmt.Errorf("unknown policy %q (want \"block\" or \"drop_newest\")", q.WhenFull)))
		}
	}
	if b.Fsync != nil {
		p, err := spool.ParseFsync(*b.Fsync)
		if err == nil && q.Type != "disk" {
			err = errors.New(`only disk queues take fsync`)
		}
		errs = append(errs, conf.Field("fsync", err))
		q.Fsync = p
	}
	if b.Replay != nil {
		q.Replay = *b.Replay
		var err error
		switch {
		case q.Replay != "fifo" && q.Replay != "live_first":
			err = fmt.Errorf("unknown replay order %q (want \"fifo\" or \"live_first\")", q.Replay)
		case q.Type != "disk":
			err = errors.New("only disk queues take replay (a memory queue is always FIFO)")
		}
		errs = append(errs, conf.Field("replay", err))
	}
	if b.BacklogShare != nil {
		q.BacklogShare = *b.BacklogShare
		var err error
		switch {
		case !(q.BacklogShare > 0 && q.BacklogShare < 1):
			err = fmt.Errorf("must be greater than 0 and less than 1, got %g", q.BacklogShare)
		case q.Replay != "live_first":
			err = errors.New(`backlog_share applies only with replay = "live_first"`)
		}
		errs = append(errs, conf.Field("backlog_share", err))
	}
	return prefixed("queue.", fieldDiags(b.Body, b.Body.MissingItemRange(), errors.Join(errs...)))
}

func decodeBatch(b *batchBlock, c *BatchConfig) hcl.Diagnostics {
	*c = BatchConfig{MaxEvents: defaultBatchEvents, MaxBytes: defaultBatchBytes, MaxWait: defaultBatchWait}
	if b == nil {
		return nil
	}
	var errs []error
	if b.MaxEvents != nil {
		c.MaxEvents = *b.MaxEvents
		if c.MaxEvents < 1 {
			errs = append(errs, conf.Field("max_events", fmt.Errorf("must be at least 1, got %d", c.MaxEvents)))
		}
	}
	if b.MaxBytes != nil {
		n, err := conf.ParseSize(*b.MaxBytes)
		if err == nil && n < 1 {
			err = errors.New("must be at least 1 byte")
		}
		errs = append(errs, conf.Field("max_bytes", err))
		c.MaxBytes = n
	}
	if b.MaxWait != nil {
		d, err := conf.ParseDuration(*b.MaxWait)
		errs = append(errs, conf.Field("max_wait", err))
		c.MaxWait = d
	}
	return prefixed("batch.", fieldDiags(b.Body, b.Body.MissingItemRange(), errors.Join(errs...)))
}

func decodeRetry(b *retryBlock, c *RetryConfig) hcl.Diagnostics {
	*c = RetryConfig{Initial: defaultRetryInitial, Max: defaultRetryMax}
	if b == nil {
		return nil
	}
	var errs []error
	if b.Initial != nil {
		d, err := conf.ParseDuration(*b.Initial)
		if err == nil && d <= 0 {
			err = errors.New("must be positive")
		}
		errs = append(errs, conf.Field("initial", err))
		c.Initial = d
	}
	if b.Max != nil {
		d, err := conf.ParseDuration(*b.Max)
		if err == nil && d < c.Initial {
			err = fmt.Errorf("must not be less than initial (%s)", c.Initial)
		}
		errs = append(errs, conf.Field("max", err))
		c.Max = d
	} else if c.Initial > c.Max {
		c.Max = c.Initial // an initial backoff above the default cap raises the cap
	}
	if b.MaxAttempts != nil {
		c.MaxAttempts = *b.MaxAttempts
		if c.MaxAttempts < 0 {
			errs = append(errs, conf.Field("max_attempts", errors.New("must be 0 (retry until shutdown) or more")))
		}
	}
	return prefixed("retry.", fieldDiags(b.Body, b.Body.MissingItemRange(), errors.Join(errs...)))
}

func (cfg *Config) loadRoutes(fs fileSchema, outIndex map[string]int) hcl.Diagnostics {
	var diags hcl.Diagnostics
	byName := map[string][]string{} // output name → its "type.name" keys, for hints
	for k := range outIndex {
		_, name, _ := strings.Cut(k, ".")
		byName[name] = append(byName[name], k)
	}
	var routes []rules.Route
	seen := map[string]hcl.Range{}
	for _, b := range fs.Routes {
		if prev, dup := seen[b.Name]; dup {
			diags = append(diags, duplicate("route", b.Name, b.DefRange, prev))
			continue
		}
		seen[b.Name] = b.DefRange
		r := rules.Route{Name: b.Name}
		spec := RouteSpec{Name: b.Name}
		if b.Continue != nil {
			r.Continue = *b.Continue
		}
		if b.Drop != nil {
			r.Drop = *b.Drop
		}
		if b.When != nil {
			p, d := rules.Compile(b.When.Expr)
			diags = append(diags, d...)
			r.When = p
		}
		switch {
		case b.To == nil && !r.Drop:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing route target",
				Detail:   `A route needs "to = [output.TYPE.NAME, …]", or "drop = true" to discard what it matches.`,
				Subject:  b.DefRange.Ptr(),
			})
		case b.To != nil && r.Drop:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Conflicting route settings",
				Detail:   `A route with "drop = true" must not also set "to".`,
				Subject:  b.To.Range.Ptr(),
			})
		case b.To != nil:
			idx, names, d := resolveTargets(b.To.Expr, outIndex, byName)
			diags = append(diags, d...)
			r.Outputs, spec.Outputs = idx, names
			if len(idx) == 0 && !d.HasErrors() {
				r.Drop = true // "to = []" is the same as "drop = true"
			}
		}
		spec.Drop, spec.Continue = r.Drop, r.Continue
		routes = append(routes, r)
		cfg.Routes = append(cfg.Routes, spec)
	}
	var unmatched []int
	if fs.Unmatched != nil {
		idx, _, d := resolveTargets(fs.Unmatched.Expr, outIndex, byName)
		diags = append(diags, d...)
		unmatched = idx
	}
	if !diags.HasErrors() {
		cfg.Table = rules.NewTable(routes, unmatched)
	}
	return diags
}

// resolveTargets turns `[output.TYPE.NAME, …]` into output indices.
func resolveTargets(expr hcl.Expression, outIndex map[string]int, byName map[string][]string) ([]int, []string, hcl.Diagnostics) {
	elems, diags := hcl.ExprList(expr)
	if diags.HasErrors() {
		return nil, nil, diags
	}
	var idx []int
	var names []string
	for _, e := range elems {
		tr, d := hcl.AbsTraversalForExpr(e)
		if d.HasErrors() || len(tr) != 3 || tr.RootName() != "output" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid output reference",
				Detail:   "Refer to an output as output.TYPE.NAME, for example output.archive.cold.",
				Subject:  e.Range().Ptr(),
			})
			continue
		}
		typ, _ := tr[1].(hcl.TraverseAttr)
		name, _ := tr[2].(hcl.TraverseAttr)
		key := typ.Name + "." + name.Name
		i, ok := outIndex[key]
		if ok && i < 0 {
			continue // declared but broken: its own errors are reported already
		}
		if !ok {
			detail := fmt.Sprintf("No output %q of type %q is declared.", name.Name, typ.Name)
			if alt := byName[name.Name]; len(alt) > 0 {
				detail += fmt.Sprintf(" Did you mean output.%s?", alt[0])
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown output",
				Detail:   detail,
				Subject:  e.Range().Ptr(),
			})
			continue
		}
		idx = append(idx, i)
		names = append(names, name.Name)
	}
	return idx, names, diags
}

// fieldDiags converts a constructor error into diagnostics: each
// *conf.FieldError points at its attribute (dotted paths descend into nested
// blocks); anything else points at fallback.
func fieldDiags(body hcl.Body, fallback hcl.Range, err error) hcl.Diagnostics {
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var diags hcl.Diagnostics
	for _, e := range errs {
		if e == nil {
			continue
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			diags = append(diags, fieldDiags(body, fallback, errors.Join(j.Unwrap()...))...)
			continue
		}
		d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value", Detail: e.Error(), Subject: fallback.Ptr()}
		var fe *conf.FieldError
		if errors.As(e, &fe) {
			d.Summary = fmt.Sprintf("Invalid %s", fe.Field)
			d.Detail = fe.Err.Error()
			if r, ok := attrRange(body, fe.Field); ok {
				d.Subject = r.Ptr()
			}
		}
		diags = append(diags, d)
	}
	return diags
}

// attrRange finds the value range of attribute path ("a" or "block.a") in a
// native-syntax body.
func attrRange(body hcl.Body, path string) (hcl.Range, bool) {
	b, ok := body.(*hclsyntax.Body)
	if !ok {
		return hcl.Range{}, false
	}
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		var next *hclsyntax.Body
		for _, blk := range b.Blocks {
			if blk.Type == p {
				next = blk.Body
				break
			}
		}
		if next == nil {
			return hcl.Range{}, false
		}
		b = next
	}
	a, ok := b.Attributes[parts[len(parts)-1]]
	if !ok {
		return hcl.Range{}, false
	}
	return a.Expr.Range(), true
}

func duplicate(kind, name string, r, prev hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Duplicate %s name", kind),
		Detail:   fmt.Sprintf("%s %q was already declared at %s:%d:%d; names must be unique.", kind, name, prev.Filename, prev.Start.Line, prev.Start.Column),
		Subject:  r.Ptr(),
	}
}

func unknownType(kind, typ string, known []string, r hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Unknown %s type", kind),
		Detail:   fmt.Sprintf("%q is not a known %s type; known types: %s.", typ, kind, strings.Join(known, ", ")),
		Subject:  r.Ptr(),
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// evalContext provides the functions config files may call: env("VAR")
// returns the environment variable and fails when it is unset (a missing
// secret should stop the load); env("VAR", "default") falls back instead.
func evalContext() *hcl.EvalContext {
	envFn := function.New(&function.Spec{
		Params:   []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam: &function.Parameter{Name: "default", Type: cty.String},
		Type:     function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.NilVal, errors.New(`env takes a variable name and an optional default: env("NAME") or env("NAME", "default")`)
			}
			name := args[0].AsString()
			if v, ok := os.LookupEnv(name); ok {
				return cty.StringVal(v), nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return cty.NilVal, fmt.Errorf("environment variable %q is not set (give a default with env(%q, \"…\"))", name, name)
		},
	})
	return &hcl.EvalContext{Functions: map[string]function.Function{"env": envFn}}
}
