package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The file scenario: the tail input following one file that this process
// writes as fast as it can (the same N lines as the other scenarios, in
// 256 KiB writes), archived uncompressed in raw format, through the queue
// -queue selects (-fsync for a disk queue). Time runs from the first write
// until sluice_output_sent_events_total == N; the archive's line count is
// verified after exit. Sluice only: there is no rsyslog counterpart.
func runSluiceFile(bin string, payload []byte, n int, o sluiceOpts) (result, error) {
	dir, err := os.MkdirTemp("", "sluice-bench-file")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	admin, err := freePort()
	if err != nil {
		return result{}, err
	}
	src := filepath.Join(dir, "app.log")
	f, err := os.Create(src) // followed from its first line
	if err != nil {
		return result{}, err
	}
	defer f.Close()
	fsync := ""
	if o.queue == "disk" {
		fsync = fmt.Sprintf("fsync = %q", o.fsync)
	}
	cfg := fmt.Sprintf(`
data_dir = "data"
admin {
  listen = "127.0.0.1:%d"
}
input "tail" "bench" {
  paths = [%q]
}
output "archive" "bench" {
  path        = "out.log"
  format      = "raw"
  compression = "none"
  queue {
    type = %q
    %s
  }
}
route "all" {
  to = [output.archive.bench]
}
`, admin, src, o.queue, fsync)
	if err := os.WriteFile(filepath.Join(dir, "bench.hcl"), []byte(cfg), 0o644); err != nil {
		return result{}, err
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "run", "-config", "bench.hcl", "-log-level", "warn")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &logs, &logs
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer cmd.Process.Kill()
	if err := waitReady(fmt.Sprintf("http://127.0.0.1:%d/readyz", admin)); err != nil {
		return result{}, fmt.Errorf("%w\n%s", err, logs.String())
	}
	profDone := make(chan error, 1)
	if o.cpuProfile != "" {
		go func() {
			kind := "profile"
			if strings.Contains(o.cpuProfile, ".trace") {
				kind = "trace"
			}
			profDone <- fetchProfile(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/%s?seconds=%d", admin, kind, o.profileSeconds), o.cpuProfile)
		}()
	} else {
		profDone <- nil
	}
	start := time.Now()
	for off := 0; off < len(payload); off += 256 << 10 {
		if _, err := f.Write(payload[off:min(off+256<<10, len(payload))]); err != nil {
			return result{}, err
		}
	}
	written := time.Since(start)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", admin)
	if !waitFor(func() bool {
		return scrape(metricsURL, `sluice_output_sent_events_total{output="bench"}`) >= float64(n)
	}) {
		return result{}, fmt.Errorf("timed out\n%s", logs.String())
	}
	elapsed := time.Since(start)
	if err := <-profDone; err != nil {
		return result{}, fmt.Errorf("cpu profile: %w", err)
	}
	res := stopAndMeasure(cmd, elapsed)
	fmt.Printf("  (file written in %v: %.0f lines/s offered)\n", written.Round(time.Millisecond), float64(n)/written.Seconds())
	got, err := countLines(filepath.Join(dir, "out.log"))
	if err != nil {
		return result{}, err
	}
	if got != n {
		return result{}, fmt.Errorf("archive holds %d lines; want %d\n%s", got, n, logs.String())
	}
	return res, nil
}
