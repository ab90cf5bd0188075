package spool

import (
	"bytes"
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// A transient open(2) failure (EMFILE) while reading is an error to retry,
// never records counted lost.
func TestReadErrorIsNotLoss(t *testing.T) {
	q := openT(t, Options{Dir: t.TempDir(), SegmentBytes: 400})
	appendSeq(t, q, 1, 60, 6)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Skip(err)
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	lim := old
	lim.Cur = uint64(len(ents) + 5)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip(err)
	}
	var fill []*os.File
	for range 100 {
		f, err := os.Open("/dev/null")
		if err != nil {
			break
		}
		fill = append(fill, f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, readErr := q.Read(ctx, 1, 1000, 0, 0)
	cancel()
	for _, f := range fill {
		f.Close()
	}
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	if readErr == nil {
		t.Fatal("Read with no file descriptors left succeeded")
	}
	if st := q.Stats(); st.LostRecords != 0 {
		t.Fatalf("%d valid records counted lost after EMFILE", st.LostRecords)
	}
	recs, err := q.Read(context.Background(), 1, 1000, 0, 0)
	if err != nil || len(recs) != 60 || recs[0].Seq != 1 {
		t.Fatalf("after the error cleared: %d records, %v; want all 60", len(recs), err)
	}
}

// A record written under a larger MaxRecord survives reopening with the
// default.
func TestRecoveryKeepsRecordsAboveCurrentMaxRecord(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(Options{Dir: dir, MaxRecord: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("b"), 20<<20)
	if _, _, err := q.Append(context.Background(), [][]byte{[]byte("a"), big, []byte("c")}); err != nil {
		t.Fatal(err)
	}
	q.Close()
	q2 := openT(t, Options{Dir: dir})
	if st := q2.Stats(); st.Records != 3 || st.LostRecords != 0 || st.QuarantinedBytes != 0 {
		t.Fatalf("after reopen: %d records, %d lost, %d bytes quarantined; want 3, 0, 0", st.Records, st.LostRecords, st.QuarantinedBytes)
	}
}

// Releasing a reservation wakes appenders waiting for room.
func TestReservationReleaseWakesAppenders(t *testing.T) {
	q := openT(t, Options{Dir: t.TempDir(), SegmentBytes: 256, MaxBytes: 512})
	rec := bytes.Repeat([]byte("a"), 76) // 100 bytes with the header
	q.mu.Lock()
	q.reserved += 450 // another Append's reservation in flight
	q.mu.Unlock()
	done := make(chan error, 1)
	go func() { _, _, err := q.Append(context.Background(), [][]byte{rec}); done <- err }()
	time.Sleep(50 * time.Millisecond)
	// The other Append commits a small record and releases its reservation:
	// the waiting appender fits now and must be woken by commit itself.
	if err := q.commit([][]byte{[]byte("x")}, 450, func(uint64) {}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("appender still blocked with %d of 512 bytes used", q.Stats().Bytes)
	}
}
