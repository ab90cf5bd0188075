package spool

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The crash test re-executes the test binary as a helper process
// (TestCrashHelper, selected by crashEnvDir) that appends to a queue with
// Fsync "always" from several goroutines and reports on stdout every record
// whose Append returned. The test kills it with SIGKILL at a random point,
// reopens the directory and checks that everything reported survived.
const (
	crashEnvDir   = "SPOOL_CRASH_HELPER_DIR"
	crashEnvRound = "SPOOL_CRASH_HELPER_ROUND"
	crashEnvAck   = "SPOOL_CRASH_HELPER_ACK"

	// crashHelperLifetime bounds a helper that nobody kills (the test
	// process died): it exits on its own.
	crashHelperLifetime = 30 * time.Second
)

func crashOptions(dir string) Options {
	return Options{Dir: dir, SegmentBytes: 8 << 10, Fsync: FsyncPolicy{Always: true}}
}

// crashPayload is the record content for a unique id: the id, '|', then
// filler of an id-dependent length and content, so that any record read
// back can be verified on its own.
func crashPayload(id string) []byte {
	h := fnv.New64a()
	h.Write([]byte(id))
	x := h.Sum64()
	n := int(x % 300)
	b := make([]byte, 0, len(id)+1+n)
	b = append(b, id...)
	b = append(b, '|')
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		b = append(b, 'a'+byte((x>>33)%26))
	}
	return b
}

// crashCheckPayload returns the id of a record and whether its content is
// exactly crashPayload(id).
func crashCheckPayload(data []byte) (string, bool) {
	i := bytes.IndexByte(data, '|')
	if i <= 0 {
		return "", false
	}
	id := string(data[:i])
	return id, bytes.Equal(data, crashPayload(id))
}

// TestCrashHelper is the helper process of TestCrashKill9; it does nothing
// in a normal test run. Protocol (one write(2) per line batch, so a line is
// never torn in the pipe):
//
//	R <lost> <quarantined> <truncated>   after Open, from Stats
//	A <seq> <id>                         after the Append covering it returned nil
//	K <to>                               before Ack(floor, to)
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("helper process of TestCrashKill9")
	}
	time.AfterFunc(crashHelperLifetime, func() { os.Exit(3) })
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "crash helper: "+format+"\n", args...)
		os.Exit(2)
	}
	round := os.Getenv(crashEnvRound)
	q, err := Open(crashOptions(dir))
	if err != nil {
		fail("Open: %v", err)
	}
	var outMu sync.Mutex
	emit := func(s string) {
		outMu.Lock()
		defer outMu.Unlock()
		if _, err := io.WriteString(os.Stdout, s); err != nil {
			fail("stdout: %v", err)
		}
	}
	st := q.Stats()
	emit(fmt.Sprintf("R %d %d %d\n", st.LostRecords, st.QuarantinedBytes, st.TruncatedBytes))

	ctx := context.Background()
	for g := 0; g < 4; g++ {
		go func() {
			for c := 0; ; c++ {
				n := 1 + (g+c)%4
				recs := make([][]byte, n)
				ids := make([]string, n)
				for k := range recs {
					ids[k] = fmt.Sprintf("r%s-g%d-c%d-k%d", round, g, c, k)
					recs[k] = crashPayload(ids[k])
				}
				seqs := make([]uint64, n)
				dropped, err := q.AppendSeqs(ctx, recs, seqs)
				if err != nil || dropped != 0 {
					fail("AppendSeqs: dropped %d, %v", dropped, err)
				}
				var sb strings.Builder
				for k, s := range seqs {
					fmt.Fprintf(&sb, "A %d %s\n", s, ids[k])
				}
				emit(sb.String())
			}
		}()
	}
	if os.Getenv(crashEnvAck) == "1" {
		go func() {
			// Acknowledge a prefix from the floor now and then, so the
			// ack file advances and segments get deleted under the kill.
			for i := 0; ; i++ {
				floor, _ := q.Bounds()
				rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				recs, err := q.Read(rctx, floor, 1+i%200, 0, 0)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					continue
				}
				if err != nil {
					fail("Read: %v", err)
				}
				if recs[0].Seq != floor {
					fail("Read from floor %d returned seq %d first", floor, recs[0].Seq)
				}
				to := recs[0].Seq
				for _, r := range recs[1:] {
					if r.Seq != to+1 {
						break
					}
					to = r.Seq
				}
				emit(fmt.Sprintf("K %d\n", to))
				if err := q.Ack(floor, to); err != nil {
					fail("Ack(%d, %d): %v", floor, to, err)
				}
				time.Sleep(time.Duration(i%5) * time.Millisecond)
			}
		}()
	}
	select {} // until killed
}

// crashRun is what one helper process reported before it was killed.
type crashRun struct {
	ready   bool
	lost    uint64 // Stats at the helper's Open
	quar    uint64
	trunc   uint64
	appends [][2]string // seq, id
	ackTo   uint64      // highest K line
	stderr  string
}

// runCrashHelper starts a helper on dir, kills it with SIGKILL at a random
// point and returns what it reported. The process is always killed and
// reaped before it returns, also when the test fails.
func runCrashHelper(t *testing.T, dir string, round int, ack bool, rng *rand.Rand) crashRun {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	ackEnv := "0"
	if ack {
		ackEnv = "1"
	}
	cmd.Env = append(os.Environ(),
		crashEnvDir+"="+dir,
		crashEnvRound+"="+strconv.Itoa(round),
		crashEnvAck+"="+ackEnv)
	cmd.Stdout = pw
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		pw.Close()
		t.Fatal(err)
	}
	pw.Close() // the helper holds the only write end now
	var once sync.Once
	kill := func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	defer kill()

	// Read the pipe until EOF (the helper died). A trailing fragment
	// without a newline cannot happen with atomic pipe writes; it would be
	// ignored.
	var (
		mu    sync.Mutex
		lines []string
	)
	ready := make(chan struct{})
	firstAppend := make(chan struct{})
	eof := make(chan error, 1)
	go func() {
		br := bufio.NewReader(pr)
		var readyOnce, appendOnce sync.Once
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				eof <- err
				return
			}
			mu.Lock()
			lines = append(lines, strings.TrimSuffix(line, "\n"))
			mu.Unlock()
			switch line[0] {
			case 'R':
				readyOnce.Do(func() { close(ready) })
			case 'A':
				appendOnce.Do(func() { close(firstAppend) })
			}
		}
	}()

	// Kill points: anywhere from the start (possibly during recovery),
	// shortly after Open, or while appends are flowing.
	var start <-chan struct{}
	var delay time.Duration
	switch rng.IntN(4) {
	case 0:
		delay = time.Duration(rng.IntN(40)) * time.Millisecond
	case 1:
		start, delay = ready, time.Duration(rng.IntN(20))*time.Millisecond
	default:
		// Up to a few ack-file writes (at most one per 100ms).
		start, delay = firstAppend, time.Duration(rng.IntN(250))*time.Millisecond
	}
	if start != nil {
		select {
		case <-start:
		case err := <-eof:
			kill()
			t.Fatalf("round %d: helper exited before being killed (%v): %s", round, err, stderr.String())
		case <-time.After(15 * time.Second):
			kill()
			t.Fatalf("round %d: helper did not start in 15s: %s", round, stderr.String())
		}
	}
	time.Sleep(delay)  // the random kill point, not an assertion
	cmd.Process.Kill() // an early exit is reported from the exit status below
	select {
	case <-eof:
	case <-time.After(15 * time.Second):
		t.Fatalf("round %d: helper stdout not closed 15s after SIGKILL", round)
	}
	kill() // reap
	if ws := cmd.ProcessState; ws == nil || ws.Success() || ws.ExitCode() != -1 {
		t.Fatalf("round %d: helper was not killed by the signal: %v; stderr: %s", round, ws, stderr.String())
	}

	run := crashRun{stderr: stderr.String()}
	if strings.Contains(run.stderr, "DATA RACE") || strings.Contains(run.stderr, "panic:") {
		t.Fatalf("round %d: helper stderr:\n%s", round, run.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) == 4 && f[0] == "R":
			run.ready = true
			run.lost, _ = strconv.ParseUint(f[1], 10, 64)
			run.quar, _ = strconv.ParseUint(f[2], 10, 64)
			run.trunc, _ = strconv.ParseUint(f[3], 10, 64)
		case len(f) == 3 && f[0] == "A":
			run.appends = append(run.appends, [2]string{f[1], f[2]})
		case len(f) == 2 && f[0] == "K":
			to, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatalf("round %d: bad line %q", round, l)
			}
			run.ackTo = max(run.ackTo, to)
		}
	}
	return run
}

// TestCrashKill9 kills a process appending with Fsync "always" at random
// points and checks, after each kill, that every record whose Append had
// returned is there, intact, at the seq Append reported, at or above the
// recovered ack floor; that the seqs from the floor to the end are
// contiguous, increasing and unique; that the ack floor never moves back
// and never passes what the helper acknowledged; and that recovery found
// nothing lost or quarantined (a process crash keeps the page cache).
// The rounds share one directory, so each recovery starts from what the
// previous crash (and recovery) left.
func TestCrashKill9(t *testing.T) {
	if os.Getenv(crashEnvDir) != "" {
		t.Skip("in the helper process")
	}
	rounds := 25
	if testing.Short() {
		rounds = 8
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>7))
	dir := t.TempDir()

	reported := map[uint64]string{} // seq → id, for every Append that returned
	var (
		maxAckTo   uint64
		prevFloor  uint64 = 1
		totalAcked uint64 // by helpers
		totalRep   int
		totalTrunc uint64
	)
	for round := 0; round < rounds; round++ {
		ack := round%2 == 1
		run := runCrashHelper(t, dir, round, ack, rng)
		if run.ready && (run.lost != 0 || run.quar != 0) {
			t.Fatalf("round %d: helper's Open found %d records lost, %d bytes quarantined after a SIGKILL", round, run.lost, run.quar)
		}
		totalTrunc += run.trunc
		totalRep += len(run.appends)
		for _, a := range run.appends {
			seq, err := strconv.ParseUint(a[0], 10, 64)
			if err != nil || seq == 0 {
				t.Fatalf("round %d: bad seq %q", round, a[0])
			}
			if prev, ok := reported[seq]; ok {
				t.Fatalf("round %d: seq %d reported for %s, already reported for %s", round, seq, a[1], prev)
			}
			reported[seq] = a[1]
		}
		maxAckTo = max(maxAckTo, run.ackTo)

		q, err := Open(Options{Dir: dir, SegmentBytes: 8 << 10})
		if err != nil {
			t.Fatalf("round %d: Open after SIGKILL: %v", round, err)
		}
		st := q.Stats()
		floor, next := q.Bounds()
		if st.LostRecords != 0 || st.QuarantinedBytes != 0 {
			q.Close()
			t.Fatalf("round %d: Open after SIGKILL lost %d records, quarantined %d bytes", round, st.LostRecords, st.QuarantinedBytes)
		}
		totalTrunc += st.TruncatedBytes
		if floor < prevFloor || floor > max(maxAckTo+1, 1) || floor > next {
			q.Close()
			t.Fatalf("round %d: ack floor %d (previous %d, highest ack %d, next %d)", round, floor, prevFloor, maxAckTo, next)
		}
		totalAcked += floor - prevFloor

		// Everything from the floor on is readable, contiguous and intact.
		recs := readAll(t, q)
		if uint64(len(recs)) != next-floor {
			q.Close()
			t.Fatalf("round %d: read %d records in [%d, %d)", round, len(recs), floor, next)
		}
		ids := make(map[string]uint64, len(recs))
		for i, r := range recs {
			if r.Seq != floor+uint64(i) {
				q.Close()
				t.Fatalf("round %d: record %d has seq %d, want %d", round, i, r.Seq, floor+uint64(i))
			}
			id, ok := crashCheckPayload(r.Data)
			if !ok {
				q.Close()
				t.Fatalf("round %d: seq %d: damaged payload %q", round, r.Seq, r.Data)
			}
			if prev, dup := ids[id]; dup {
				q.Close()
				t.Fatalf("round %d: %s at seq %d and %d", round, id, prev, r.Seq)
			}
			ids[id] = r.Seq
			if want, ok := reported[r.Seq]; ok && want != id {
				q.Close()
				t.Fatalf("round %d: seq %d holds %s, Append reported %s", round, r.Seq, id, want)
			}
		}
		for seq, id := range reported {
			if seq < floor {
				continue // acknowledged, possibly deleted
			}
			if got, ok := ids[id]; !ok || got != seq {
				q.Close()
				t.Fatalf("round %d: %s, appended as seq %d (floor %d, next %d), read back at %d (present %v)", round, id, seq, floor, next, got, ok)
			}
		}
		// Keep the backlog small (each Open reads all of it): acknowledge
		// what was verified but the newest records, which the next helper
		// starts with. Close persists it.
		if next > floor+200 {
			if err := q.Ack(floor, next-201); err != nil {
				t.Fatal(err)
			}
			maxAckTo = max(maxAckTo, next-201)
			floor = next - 200
		}
		if err := q.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", round, err)
		}
		prevFloor = floor
		for seq := range reported {
			if seq < floor {
				delete(reported, seq) // below the floor for good
			}
		}
	}
	t.Logf("%d rounds: %d appends reported, %d acknowledged by helpers, final floor %d, %d torn bytes truncated",
		rounds, totalRep, totalAcked, prevFloor, totalTrunc)
	if totalRep == 0 {
		t.Fatal("no helper ever reported an append: the test checked nothing")
	}
}
