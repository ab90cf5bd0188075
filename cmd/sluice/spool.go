package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicelog/sluice/spool"
)

const spoolUsage = `usage: sluice spool status (-config FILE | -dir DIR) [-json]

  -config FILE   every output of this configuration (disk queues under its spool.dir)
  -dir DIR       a spool.dir (each subdirectory is one output's queue) or one queue's directory
  -json          print JSON instead of a table

Reads the disk queues without locking or changing them, so it works while
the daemon runs.
`

func cmdSpool(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, spoolUsage)
		return 2
	}
	switch args[0] {
	case "status":
		return cmdSpoolStatus(args[1:], time.Now(), stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, spoolUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "sluice spool: unknown command %q\n\n%s", args[0], spoolUsage)
		return 2
	}
}

// queueStatus is one output's line in `sluice spool status`.
type queueStatus struct {
	Output string
	Queue  string // "disk" | "memory"
	Dir    string // disk
	In     spool.Inspection
	Err    error
}

func cmdSpoolStatus(args []string, now time.Time, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("spool status", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprint(stderr, spoolUsage) }
	path := flags.String("config", "", "configuration file (HCL)")
	dir := flags.String("dir", "", "spool directory, or one queue's directory")
	asJSON := flags.Bool("json", false, "print JSON")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	switch {
	case flags.NArg() > 0:
		fmt.Fprintf(stderr, "sluice spool status: unexpected argument %q\n", flags.Arg(0))
		return 2
	case (*path == "") == (*dir == ""):
		fmt.Fprintln(stderr, "sluice spool status: give exactly one of -config and -dir")
		return 2
	}

	var queues []queueStatus
	if *path != "" {
		cfg, ok := loadConfig(*path, nil, stderr, "")
		if !ok {
			return 1
		}
		for _, o := range cfg.Outputs {
			q := queueStatus{Output: o.Name, Queue: o.Queue.Type}
			if o.Queue.Type == "disk" {
				q.Dir = o.Queue.Dir
			}
			queues = append(queues, q)
		}
	} else {
		var err error
		if queues, err = spoolDirQueues(*dir); err != nil {
			fmt.Fprintf(stderr, "sluice spool status: %v\n", err)
			return 1
		}
	}

	code := 0
	for i := range queues {
		q := &queues[i]
		if q.Queue != "disk" {
			continue
		}
		q.In, q.Err = spool.Inspect(q.Dir)
		if q.Err != nil {
			code = 1
			msg := q.Err.Error()
			if errors.Is(q.Err, spool.ErrNoSpool) && !filepath.IsAbs(q.Dir) {
				if wd, err := os.Getwd(); err == nil {
					msg += " (relative to the working directory " + wd + ")"
				}
			}
			fmt.Fprintf(stderr, "sluice spool status: output %s: %s\n", q.Output, msg)
		}
	}

	var err error
	if *asJSON {
		err = writeStatusJSON(stdout, queues, now)
	} else {
		err = writeStatusText(stdout, queues, now)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice spool status: %v\n", err)
		return 1
	}
	return code
}

// spoolDirQueues lists the queues of dir: dir itself if it holds a queue's
// files, else each of its subdirectories.
func spoolDirQueues(dir string) ([]queueStatus, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s", spool.ErrNoSpool, dir)
	}
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if isQueueFile(e.Name()) && !e.IsDir() {
			return []queueStatus{{Output: filepath.Base(filepath.Clean(dir)), Queue: "disk", Dir: dir}}, nil
		}
	}
	var qs []queueStatus
	for _, e := range entries {
		if e.IsDir() {
			qs = append(qs, queueStatus{Output: e.Name(), Queue: "disk", Dir: filepath.Join(dir, e.Name())})
		}
	}
	return qs, nil
}

// isQueueFile reports whether name is one a queue directory holds.
func isQueueFile(name string) bool {
	if name == "ack" || name == "LOCK" {
		return true
	}
	digits, ok := strings.CutSuffix(name, ".seg")
	if !ok || len(digits) != 20 {
		return false
	}
	_, err := strconv.ParseUint(digits, 10, 64)
	return err == nil
}

func writeStatusText(w io.Writer, queues []queueStatus, now time.Time) error {
	if len(queues) == 0 {
		_, err := fmt.Fprintln(w, "no queues")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "OUTPUT\tQUEUE\tPENDING\tBYTES\tOLDEST\tSEGMENTS\tFLOOR\tNEXT\tDIR")
	var notes []string
	for _, q := range queues {
		switch {
		case q.Queue != "disk":
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t%s queue (not persisted)\n", q.Output, q.Queue, q.Queue)
		case q.Err != nil:
			fmt.Fprintf(tw, "%s\t%s\t?\t?\t?\t?\t?\t?\t%s\n", q.Output, q.Queue, q.Dir)
			notes = append(notes, fmt.Sprintf("%s: error: %v", q.Output, q.Err))
		default:
			in := q.In
			oldest := "-"
			if !in.Oldest.IsZero() {
				oldest = fmt.Sprintf("%s (%s)", formatAge(now.Sub(in.Oldest)), in.Oldest.Format(time.RFC3339))
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t%s\n", q.Output, q.Queue, in.Records,
				formatBytes(in.Bytes), oldest, in.Segments, in.Floor, in.Next, q.Dir)
			notes = append(notes, damageNotes(q.Output, in)...)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	return nil
}

// damageNotes explains, in a line each, the problems an inspection found.
func damageNotes(output string, in spool.Inspection) []string {
	var notes []string
	switch {
	case in.AckErr == nil:
	case errors.Is(in.AckErr, fs.ErrNotExist):
		if in.Segments > 0 {
			notes = append(notes, fmt.Sprintf("%s: no ack file: every record counts as pending (the daemon delivers them all again)", output))
		}
	default:
		notes = append(notes, fmt.Sprintf("%s: unusable ack file (%v): every record counts as pending (the daemon delivers them all again)", output, in.AckErr))
	}
	if in.TornBytes > 0 {
		notes = append(notes, fmt.Sprintf("%s: %s at the end of the last segment are no complete record: a write in progress, or a torn write (truncated when the daemon next opens the queue)", output, formatBytes(in.TornBytes)))
	}
	if in.CorruptBytes > 0 {
		notes = append(notes, fmt.Sprintf("%s: %s of damaged data in %d segment(s) (moved aside as *.corrupt when the daemon next opens the queue)", output, formatBytes(in.CorruptBytes), in.CorruptSegments))
	}
	if in.LostRecords > 0 {
		notes = append(notes, fmt.Sprintf("%s: %d unacknowledged record(s) missing or damaged (counted lost when the daemon next opens the queue)", output, in.LostRecords))
	}
	if in.QuarantinedFiles > 0 {
		notes = append(notes, fmt.Sprintf("%s: %d quarantined file(s) (*.corrupt, %s): damaged data moved aside earlier", output, in.QuarantinedFiles, formatBytes(in.QuarantinedBytes)))
	}
	return notes
}

// statusJSON is one output in `sluice spool status -json`. The disk fields
// are absent for memory queues and for queues that could not be read.
type statusJSON struct {
	Output string `json:"output"`
	Queue  string `json:"queue"`
	Dir    string `json:"dir,omitempty"`
	Error  string `json:"error,omitempty"`
	*diskStatusJSON
}

type diskStatusJSON struct {
	Pending          uint64   `json:"pending"`
	Bytes            int64    `json:"bytes"`
	DiskBytes        int64    `json:"disk_bytes"`
	Segments         int      `json:"segments"`
	Oldest           *string  `json:"oldest"`
	OldestAgeSeconds *float64 `json:"oldest_age_seconds"`
	AckFloor         uint64   `json:"ack_floor"`
	NextSeq          uint64   `json:"next_seq"`
	AckRanges        int      `json:"ack_ranges"`
	AckError         string   `json:"ack_error,omitempty"`
	TornBytes        int64    `json:"torn_bytes"`
	CorruptBytes     int64    `json:"corrupt_bytes"`
	CorruptSegments  int      `json:"corrupt_segments"`
	LostRecords      uint64   `json:"lost_records"`
	QuarantinedFiles int      `json:"quarantined_files"`
	QuarantinedBytes int64    `json:"quarantined_bytes"`
}

func writeStatusJSON(w io.Writer, queues []queueStatus, now time.Time) error {
	out := struct {
		Outputs []statusJSON `json:"outputs"`
	}{Outputs: []statusJSON{}}
	for _, q := range queues {
		s := statusJSON{Output: q.Output, Queue: q.Queue, Dir: q.Dir}
		switch {
		case q.Queue != "disk":
		case q.Err != nil:
			s.Error = q.Err.Error()
		default:
			in := q.In
			d := &diskStatusJSON{
				Pending: in.Records, Bytes: in.Bytes, DiskBytes: in.DiskBytes, Segments: in.Segments,
				AckFloor: in.Floor, NextSeq: in.Next, AckRanges: in.AckRanges,
				TornBytes: in.TornBytes, CorruptBytes: in.CorruptBytes, CorruptSegments: in.CorruptSegments,
				LostRecords: in.LostRecords, QuarantinedFiles: in.QuarantinedFiles, QuarantinedBytes: in.QuarantinedBytes,
			}
			if !in.Oldest.IsZero() {
				ts := in.Oldest.UTC().Format(time.RFC3339Nano)
				age := max(now.Sub(in.Oldest), 0).Seconds()
				d.Oldest, d.OldestAgeSeconds = &ts, &age
			}
			if in.AckErr != nil {
				d.AckError = in.AckErr.Error()
			}
			s.diskStatusJSON = d
		}
		out.Outputs = append(out.Outputs, s)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// formatAge renders an age to the second (to the millisecond under a second).
func formatAge(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// formatBytes renders n with a binary unit and one decimal: "512B", "3.1MiB".
func formatBytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + "B"
	}
	v, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + unit
}
