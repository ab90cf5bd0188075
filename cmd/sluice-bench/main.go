// Command sluice-bench is the end-to-end benchmark behind `make bench`: it
// sends N RFC 5424 messages (~258 bytes) over one TCP connection to the
// built sluice binary archiving them (plain, gzip level 1, gzip level 6) or
// forwarding them with the http output as NDJSON (plain or gzip level 1) to
// a counting HTTP sink inside this process, and prints msgs/s, MiB/s, CPU
// seconds and peak RSS. When rsyslogd is installed it runs the same archive
// load against rsyslog (imptcp → omfile, zipLevel) in the same run and
// prints the ratio.
//
// Timing: from the first byte sent until every message is written; CPU
// and peak RSS are whole-process figures from rusage after exit. For Sluice
// "written" is sluice_output_sent_events_total == N (the archive's write(2)
// returned, or the HTTP sink answered every event); for rsyslog it is when a second action, run after the archive
// action for the last message only, has written it to a marker file. Line
// counts (archive files, or NDJSON lines the HTTP sink received) are verified
// after exit.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	sluice := flag.String("sluice", "bin/sluice", "path to the sluice binary")
	n := flag.Int("n", 1_000_000, "messages per run")
	runs := flag.Int("runs", 1, "runs per scenario (the median is reported)")
	only := flag.String("only", "", "comma-separated scenarios to run (plain,gzip1,gzip6,http,httpgz,zmq,fwd,tls,file); empty = all")
	noRsyslog := flag.Bool("no-rsyslog", false, "skip rsyslog even if installed")
	var o sluiceOpts
	flag.StringVar(&o.queue, "queue", "memory", `Sluice's queue for the archive output: "memory" or "disk"`)
	flag.StringVar(&o.fsync, "fsync", "1s", `the disk queue's fsync policy: "always", "never" or a duration`)
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of Sluice's first run of each scenario to this file (suffixed with the scenario name), taken from the admin endpoint; a name containing \".trace\" gets an execution trace instead")
	flag.IntVar(&o.profileSeconds, "profile-seconds", 2, "length of the -cpuprofile profile")
	flag.Parse()
	if err := run(*sluice, *n, *runs, *only, *noRsyslog, o); err != nil {
		fmt.Fprintln(os.Stderr, "sluice-bench:", err)
		os.Exit(1)
	}
}

type scenario struct {
	name  string
	level int  // 0 = no compression
	http  bool // the http output (NDJSON) to an in-process sink, not the archive
}

type result struct {
	elapsed time.Duration
	cpu     time.Duration
	rssKiB  int64
}

// sluiceOpts are the flags that shape Sluice's side of a run.
type sluiceOpts struct {
	queue, fsync   string
	cpuProfile     string // "" = none; otherwise a path prefix
	profileSeconds int
	pki            *benchPKI // the tls scenario's certificates (see tls.go)
}

func run(bin string, n, runs int, only string, noRsyslog bool, o sluiceOpts) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	payload := genMessages(n)
	if o.queue == "disk" {
		fmt.Printf("sluice queue: disk, fsync %s\n", o.fsync)
	} else {
		fmt.Printf("sluice queue: %s\n", o.queue)
	}
	fmt.Printf("payload: %d messages, %.1f MiB, avg %d bytes/message (newline framing, one TCP connection)\n",
		n, float64(len(payload))/(1<<20), len(payload)/n-1)
	rsyslogd, _ := exec.LookPath("rsyslogd")
	if noRsyslog {
		rsyslogd = ""
	}
	if rsyslogd == "" {
		fmt.Println("rsyslogd not found: Sluice only (apt-get install rsyslog for the side-by-side comparison)")
	}
	scenarios := []scenario{{"plain", 0, false}, {"gzip1", 1, false}, {"gzip6", 6, false}, {"http", 0, true}, {"httpgz", 1, true}, {"zmq", 0, false}, {"fwd", 0, false}, {"tls", 0, false}, {"file", 0, false}}
	if only == "" || strings.Contains(","+only+",", ",tls,") {
		if o.pki, err = makeBenchPKI(); err != nil {
			return err
		}
		defer os.RemoveAll(o.pki.dir)
	}
	fmt.Printf("\n%-8s %-8s %12s %9s %9s %12s %9s\n", "scenario", "daemon", "msgs/s", "MiB/s", "cpu s", "cpu µs/msg", "peakRSS")
	for _, sc := range scenarios {
		if only != "" && !strings.Contains(","+only+",", ","+sc.name+",") {
			continue
		}
		var sl, rs []result
		for i := range runs {
			so := o
			if i > 0 || so.cpuProfile == "" {
				so.cpuProfile = ""
			} else {
				so.cpuProfile += "." + sc.name
			}
			if sc.name == "file" { // see file.go
				r, err := runSluiceFile(bin, payload, n, so)
				if err != nil {
					return fmt.Errorf("%s sluice: %w", sc.name, err)
				}
				sl = append(sl, r)
				continue
			}
			r, err := runSluice(bin, sc, payload, n, so)
			if err != nil {
				return fmt.Errorf("%s sluice: %w", sc.name, err)
			}
			sl = append(sl, r)
			if sc.name == "fwd" { // see fwd.go
				if rsyslogd != "" {
					r, err := runRsyslogFwd(rsyslogd, payload, n)
					if err != nil {
						return fmt.Errorf("%s rsyslog: %w", sc.name, err)
					}
					rs = append(rs, r)
				}
				continue
			}
			if sc.name == "zmq" { // see zmq.go
				if rsyslogd != "" && omczmqAvailable() {
					r, err := runRsyslogZMQ(rsyslogd, payload, n)
					if err != nil {
						return fmt.Errorf("%s rsyslog: %w", sc.name, err)
					}
					rs = append(rs, r)
				} else if rsyslogd != "" && i == 0 {
					fmt.Println("rsyslog's omczmq module not found (apt-get install rsyslog-czmq): zmq is Sluice only")
				}
				continue
			}
			if sc.name == "tls" && rsyslogd != "" && !gtlsAvailable() {
				if i == 0 {
					fmt.Println("rsyslog's gtls driver not found (apt-get install rsyslog-gnutls): tls is Sluice only")
				}
				continue
			}
			if rsyslogd != "" && !sc.http {
				r, err := runRsyslog(rsyslogd, sc, payload, n, o.pki)
				if err != nil {
					return fmt.Errorf("%s rsyslog: %w", sc.name, err)
				}
				rs = append(rs, r)
			}
		}
		s := median(sl)
		report(sc.name, "sluice", s, n, len(payload))
		if len(rs) > 0 {
			r := median(rs)
			report(sc.name, "rsyslog", r, n, len(payload))
			fmt.Printf("%-8s %-8s %11.2fx\n", sc.name, "ratio", r.elapsed.Seconds()/s.elapsed.Seconds())
		}
	}
	return nil
}

func report(sc, who string, r result, n, bytes int) {
	sec := r.elapsed.Seconds()
	fmt.Printf("%-8s %-8s %12.0f %9.1f %9.2f %12.2f %6d MiB\n", sc, who, float64(n)/sec,
		float64(bytes)/(1<<20)/sec, r.cpu.Seconds(), r.cpu.Seconds()*1e6/float64(n), r.rssKiB/1024)
}

func median(rs []result) result {
	sort.Slice(rs, func(i, j int) bool { return rs[i].elapsed < rs[j].elapsed })
	return rs[len(rs)/2]
}

// genMessages builds n newline-framed RFC 5424 messages of ~258 bytes.
// endMarker ends the last message; rsyslog writes that message to a marker
// file after the archive action, which tells when it has processed everything.
const endMarker = "BENCH-END"

func genMessages(n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 260)
	hosts := []string{"web-01.example.net", "web-02.example.net", "db-01.example.net", "cache-03.example.net"}
	apps := []string{"nginx", "postgres", "api-gateway", "billing"}
	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := range n {
		ts := base.Add(time.Duration(i) * time.Microsecond).Format("2006-01-02T15:04:05.000000Z")
		line := fmt.Sprintf(`<%d>1 %s %s %s %d ID%d [meta seq="%d" zone="eu-west-1"] request handled path=/api/v1/items/%d status=200 bytes=%d dur_ms=%d user_agent="Mozilla/5.0 (X11; Linux x86_64)"`,
			8+i%8+16*8, ts, hosts[i%4], apps[i%4], 1000+i%50, i%100, i, i%9973, 512+i%4096, i%250)
		if pad := 258 - len(line); pad > 0 {
			line += " " + strings.Repeat("x", pad-1)
		}
		if i == n-1 {
			line = line[:len(line)-len(endMarker)-1] + " " + endMarker
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tcpDialer connects to 127.0.0.1:port.
func tcpDialer(port int) func() (net.Conn, error) {
	return func() (net.Conn, error) { return net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)) }
}

// sendWith writes payload on a connection from dial (retried for 5 s while
// the daemon starts listening).
func sendWith(dial func() (net.Conn, error), payload []byte) error {
	var c net.Conn
	var err error
	for range 200 {
		if c, err = dial(); err == nil {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	for off := 0; off < len(payload); off += 256 << 10 {
		end := min(off+256<<10, len(payload))
		if _, err := c.Write(payload[off:end]); err != nil {
			return err
		}
	}
	return nil
}

func runSluice(bin string, sc scenario, payload []byte, n int, o sluiceOpts) (result, error) {
	dir, err := os.MkdirTemp("", "sluice-bench")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	port, _ := freePort()
	admin, _ := freePort()
	fsync := ""
	if o.queue == "disk" {
		fsync = fmt.Sprintf("fsync = %q", o.fsync)
	}
	comp, path := `compression = "none"`, "out.log"
	if sc.level > 0 {
		comp, path = fmt.Sprintf("compression = \"gzip\"\n  level = %d", sc.level), "out.log.gz"
	}
	outType, outBody := "archive", fmt.Sprintf("path   = %q\n  format = \"raw\"\n  %s", path, comp)
	var sink *httpSink
	if sc.http {
		if sink, err = startHTTPSink(); err != nil {
			return result{}, err
		}
		defer sink.close()
		outType, outBody = "http", fmt.Sprintf("url = %q\n  %s", sink.url, comp)
	}
	scheme, tlsBlock, dial := "tcp", "", tcpDialer(port)
	if sc.name == "tls" {
		scheme, dial = "tls", o.pki.dialer(port)
		tlsBlock = fmt.Sprintf("tls {\n    cert_file = %q\n    key_file  = %q\n  }", o.pki.certFile, o.pki.keyFile)
	}
	var fsink *frameSink
	if sc.name == "fwd" {
		if fsink, err = startFrameSink(); err != nil {
			return result{}, err
		}
		defer fsink.close()
		outType, outBody = "syslog", fmt.Sprintf("targets = [\"tcp://127.0.0.1:%d\"]\n  format  = \"raw\"", fsink.port())
	}
	var zsink *zmqSink
	if sc.name == "zmq" {
		if zsink, err = startZMQSink(); err != nil {
			return result{}, err
		}
		defer zsink.close()
		outType, outBody = "zmq", fmt.Sprintf("connect = %q\n  format  = \"raw\"", zsink.endpoint)
	}
	cfg := fmt.Sprintf(`
data_dir = "data"
admin {
  listen = "127.0.0.1:%d"
}
input "syslog" "bench" {
  listen = ["%s://127.0.0.1:%d"]
  %s
}
output %q "bench" {
  %s
  queue {
    type  = %q
    %s
  }
}
route "all" {
  to = [output.%s.bench]
}
`, admin, scheme, port, tlsBlock, outType, outBody, o.queue, fsync, outType)
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
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", admin)
	if err := waitReady(fmt.Sprintf("http://127.0.0.1:%d/readyz", admin)); err != nil {
		return result{}, fmt.Errorf("%w\n%s", err, logs.String())
	}
	profDone := make(chan error, 1)
	if o.cpuProfile != "" {
		go func() {
			kind := "profile"
			if strings.HasSuffix(o.cpuProfile, ".trace") || strings.Contains(o.cpuProfile, ".trace.") {
				kind = "trace"
			}
			profDone <- fetchProfile(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/%s?seconds=%d", admin, kind, o.profileSeconds), o.cpuProfile)
		}()
	} else {
		profDone <- nil
	}
	start := time.Now()
	if err := sendWith(dial, payload); err != nil {
		return result{}, err
	}
	if !waitFor(func() bool {
		if zsink != nil { // received by the PULL sink, not just sent
			return zsink.count.Load() >= int64(n)
		}
		if fsink != nil { // counted by the receiver, not just sent
			return fsink.count.Load() >= int64(n)
		}
		return scrape(metricsURL, `sluice_output_sent_events_total{output="bench"}`) >= float64(n)
	}) {
		return result{}, fmt.Errorf("timed out\n%s", logs.String())
	}
	elapsed := time.Since(start)
	if err := <-profDone; err != nil {
		return result{}, fmt.Errorf("cpu profile: %w", err)
	}
	res := stopAndMeasure(cmd, elapsed)
	if sink != nil {
		lines, wire, reqs := sink.stats()
		if lines != int64(n) {
			return result{}, fmt.Errorf("http sink received %d events; want %d\n%s", lines, n, logs.String())
		}
		fmt.Printf("  (http sink: %d requests, %.1f MiB on the wire, %d bytes/event)\n", reqs, float64(wire)/(1<<20), wire/int64(n))
		return res, nil
	}
	if fsink != nil {
		if got, bad := fsink.count.Load(), fsink.bad.Load(); got != int64(n) || bad != 0 {
			return result{}, fmt.Errorf("receiver counted %d messages (%d malformed connections); want %d\n%s", got, bad, n, logs.String())
		}
		return res, nil
	}
	if zsink != nil {
		if got := zsink.count.Load(); got != int64(n) {
			return result{}, fmt.Errorf("zmq sink received %d messages; want %d\n%s", got, n, logs.String())
		}
		return res, nil
	}
	got, err := countLines(filepath.Join(dir, path))
	if err != nil {
		return result{}, err
	}
	if got != n {
		return result{}, fmt.Errorf("archive holds %d lines; want %d\n%s", got, n, logs.String())
	}
	return res, nil
}

// httpSink is the http scenarios' destination: an HTTP server in this
// process that answers 200 to every request and counts requests, body bytes
// as received, and NDJSON lines (gunzipping Content-Encoding: gzip bodies).
type httpSink struct {
	url               string
	srv               *http.Server
	done              chan struct{}
	lines, wire, reqs atomic.Int64
}

func startHTTPSink() (*httpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &httpSink{url: "http://" + ln.Addr().String() + "/ingest", done: make(chan struct{})}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln)
	}()
	return s, nil
}

func (s *httpSink) serve(w http.ResponseWriter, r *http.Request) {
	cr := &countingReader{r: r.Body}
	var body io.Reader = cr
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(cr)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	lines, err := countNewlines(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.lines.Add(lines)
	s.wire.Add(cr.n)
	s.reqs.Add(1)
}

func (s *httpSink) stats() (lines, wire, reqs int64) {
	return s.lines.Load(), s.wire.Load(), s.reqs.Load()
}

// close stops the server and waits for Serve to return.
func (s *httpSink) close() {
	s.srv.Close()
	<-s.done
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

func runRsyslog(rsyslogd string, sc scenario, payload []byte, n int, pki *benchPKI) (result, error) {
	dir, err := os.MkdirTemp("", "rsyslog-bench")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	port, _ := freePort()
	out := filepath.Join(dir, "out.log")
	marker := filepath.Join(dir, "end.marker")
	zip := ""
	if sc.level > 0 {
		out += ".gz"
		zip = fmt.Sprintf(` zipLevel="%d"`, sc.level)
	}
	conf := fmt.Sprintf(`
global(workDirectory=%q)
main_queue(queue.timeoutShutdown="600000" queue.size="200000")
module(load="imptcp")
template(name="raw" type="string" string="%%rawmsg%%\n")
ruleset(name="bench") {
  action(type="omfile" file=%q template="raw" ioBufferSize="256k" asyncWriting="on"%s)
  if ($msg contains %q) then {
    action(type="omfile" file=%q template="raw")
  }
}
input(type="imptcp" address="127.0.0.1" port="%d" ruleset="bench")
`, dir, out, zip, endMarker, marker, port)
	dial := tcpDialer(port)
	if sc.name == "tls" { // imptcp has no TLS: imtcp with the GnuTLS driver
		conf = strings.Replace(conf, fmt.Sprintf("global(workDirectory=%q)", dir), fmt.Sprintf(
			"global(workDirectory=%q DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=%q DefaultNetstreamDriverCertFile=%q DefaultNetstreamDriverKeyFile=%q)",
			dir, pki.caFile, pki.certFile, pki.keyFile), 1)
		conf = strings.Replace(conf, `module(load="imptcp")`, `module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")`, 1)
		conf = strings.Replace(conf, `input(type="imptcp"`, `input(type="imtcp"`, 1)
		dial = pki.dialer(port)
	}
	// Done when rsyslog has run the action after the archive's for the
	// last message. With asyncWriting the archive's last buffer is written
	// at shutdown: that flush is not in the time (in rsyslog's favour).
	res, err := timeRsyslog(rsyslogd, dir, conf, dial, payload, func() bool { st, err := os.Stat(marker); return err == nil && st.Size() > 0 })
	if err != nil {
		return result{}, err
	}
	got, err := countLines(out)
	if err != nil {
		return result{}, err
	}
	if got != n {
		return result{}, fmt.Errorf("rsyslog wrote %d lines; want %d", got, n)
	}
	return res, nil
}

// timeRsyslog writes conf into dir, runs rsyslogd on it in the foreground,
// sends payload on a connection from dial once it had time to bind, and
// measures until done reports true; rsyslogd is then stopped. Errors carry
// rsyslogd's output.
func timeRsyslog(rsyslogd, dir, conf string, dial func() (net.Conn, error), payload []byte, done func() bool) (result, error) {
	cf := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return result{}, err
	}
	var logs bytes.Buffer
	cmd := exec.Command(rsyslogd, "-n", "-f", cf, "-i", filepath.Join(dir, "rsyslog.pid"))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer cmd.Process.Kill()
	time.Sleep(300 * time.Millisecond) // imptcp binds during startup; sendWith retries the dial too
	start := time.Now()
	if err := sendWith(dial, payload); err != nil {
		return result{}, fmt.Errorf("%w\n%s", err, logs.String())
	}
	if !waitFor(done) {
		return result{}, fmt.Errorf("rsyslog timed out\n%s", logs.String())
	}
	return stopAndMeasure(cmd, time.Since(start)), nil
}

func waitReady(url string) error {
	for range 400 {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("sluice not ready")
}

func scrape(url, prefix string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, prefix+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(l[len(prefix):]), 64)
			return v
		}
	}
	return 0
}

// waitFor polls done every 2ms for at most 10 minutes.
func waitFor(done func() bool) bool {
	deadline := time.Now().Add(10 * time.Minute)
	for !done() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// stopAndMeasure reads the daemon's peak RSS (VmHWM: rusage's Maxrss of a
// child started with vfork counts the parent's memory too), stops it with
// SIGTERM, and reads its whole-life CPU time once it exited.
func stopAndMeasure(cmd *exec.Cmd, elapsed time.Duration) result {
	r := result{elapsed: elapsed, rssKiB: peakRSS(cmd.Process.Pid)}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return r
}

// peakRSS returns VmHWM of a running pid in KiB (0 if unreadable).
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
		if err != nil {
			return 0, err
		}
		r = zr
	}
	n, err := countNewlines(r)
	return int(n), err
}

// countNewlines reads r to the end and counts its '\n' bytes.
func countNewlines(r io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var count int64
	for {
		k, err := r.Read(buf)
		count += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if err == io.EOF {
			return count, nil
		}
		if err != nil {
			return count, err
		}
	}
}

// fetchProfile saves the CPU profile served at url to path.
func fetchProfile(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
