package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// On-disk constants; see doc.go for the format.
const (
	segMagic      = "SLSG"
	segVersion    = 1
	segHeaderSize = 8
	recHeaderSize = 24 // len u32 | crc u32 | seq u64 | appended i64
	segExt        = ".seg"
	segNameDigits = 20

	ackMagic    = "SLAK"
	ackVersion  = 1
	ackFileName = "ack"
	ackTmpName  = "ack.tmp"
	lockName    = "LOCK"

	// indexEvery is the spacing, in bytes, of the in-memory sparse index of
	// record offsets kept per segment.
	indexEvery = 64 << 10
	// maxPersistRanges caps the acknowledged ranges written to the ack file.
	maxPersistRanges = 1024
	// maxAckFileSize is the largest valid ack file: header, ranges, CRC.
	maxAckFileSize = 20 + 16*maxPersistRanges + 4
	// hardMaxRecord bounds a record length accepted when scanning, whatever
	// Options.MaxRecord is now (it may have been larger when written).
	hardMaxRecord = 1 << 30
)

// crcTable is read-only after package initialisation.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

func segName(first uint64) string {
	return fmt.Sprintf("%0*d%s", segNameDigits, first, segExt)
}

// parseSegName returns the first seq encoded in a segment file name.
func parseSegName(name string) (uint64, bool) {
	if len(name) != segNameDigits+len(segExt) || !strings.HasSuffix(name, segExt) {
		return 0, false
	}
	v, err := strconv.ParseUint(name[:segNameDigits], 10, 64)
	if err != nil || v == 0 {
		return 0, false
	}
	return v, true
}

func segHeader() []byte {
	b := make([]byte, segHeaderSize)
	copy(b, segMagic)
	binary.LittleEndian.PutUint16(b[4:], segVersion)
	return b
}

func validSegHeader(b []byte) bool {
	return len(b) >= segHeaderSize && string(b[:4]) == segMagic &&
		binary.LittleEndian.Uint16(b[4:]) == segVersion && binary.LittleEndian.Uint16(b[6:]) == 0
}

// appendRecord encodes one record onto buf.
func appendRecord(buf []byte, seq uint64, ts int64, payload []byte) []byte {
	start := len(buf)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(payload)))
	buf = binary.LittleEndian.AppendUint32(buf, 0) // crc, below
	buf = binary.LittleEndian.AppendUint64(buf, seq)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(ts))
	buf = append(buf, payload...)
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(buf[start+8:], crcTable))
	return buf
}

type recHeader struct {
	n   uint32
	crc uint32
	seq uint64
	ts  int64
}

func parseRecHeader(b []byte) recHeader {
	return recHeader{
		n:   binary.LittleEndian.Uint32(b[0:]),
		crc: binary.LittleEndian.Uint32(b[4:]),
		seq: binary.LittleEndian.Uint64(b[8:]),
		ts:  int64(binary.LittleEndian.Uint64(b[16:])),
	}
}

// recordCRCOK checks the CRC of a whole encoded record (header + payload).
func recordCRCOK(rec []byte) bool {
	want := binary.LittleEndian.Uint32(rec[4:])
	return crc32.Checksum(rec[8:], crcTable) == want
}

// span is an inclusive range of acknowledged seqs.
type span struct{ lo, hi uint64 }

// ackState is what the ack file holds: the lowest unacknowledged seq and
// acknowledged ranges above it (sorted, disjoint, not adjacent, lo > floor).
type ackState struct {
	floor  uint64
	ranges []span
}

// covers reports whether every seq in [lo,hi] is acknowledged in st.
func (st ackState) covers(lo, hi uint64) bool {
	if hi < st.floor {
		return true
	}
	i := searchSpan(st.ranges, lo)
	return i >= 0 && st.ranges[i].hi >= hi
}

// searchSpan returns the index of the range containing seq, or -1.
func searchSpan(rs []span, seq uint64) int {
	lo, hi := 0, len(rs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rs[m].hi < seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(rs) && rs[lo].lo <= seq {
		return lo
	}
	return -1
}

// encodeAck: magic(4) | version u16 | reserved u16 | floor u64 | n u32 |
// n × (lo u64 | hi u64) | crc32c u32 over everything before it.
func encodeAck(st ackState) []byte {
	b := make([]byte, 0, 20+16*len(st.ranges)+4)
	b = append(b, ackMagic...)
	b = binary.LittleEndian.AppendUint16(b, ackVersion)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint64(b, st.floor)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(st.ranges)))
	for _, r := range st.ranges {
		b = binary.LittleEndian.AppendUint64(b, r.lo)
		b = binary.LittleEndian.AppendUint64(b, r.hi)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

var errBadAck = errors.New("malformed ack file")

func decodeAck(b []byte) (ackState, error) {
	if len(b) < 24 || string(b[:4]) != ackMagic {
		return ackState{}, fmt.Errorf("%w: bad magic or short (%d bytes)", errBadAck, len(b))
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return ackState{}, fmt.Errorf("%w: crc mismatch", errBadAck)
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != ackVersion {
		return ackState{}, fmt.Errorf("%w: unknown version %d", errBadAck, v)
	}
	st := ackState{floor: binary.LittleEndian.Uint64(b[8:])}
	n := binary.LittleEndian.Uint32(b[16:])
	if st.floor == 0 || uint64(len(body)) != 20+16*uint64(n) {
		return ackState{}, fmt.Errorf("%w: floor %d, %d ranges in %d bytes", errBadAck, st.floor, n, len(b))
	}
	prev := st.floor
	for i := uint32(0); i < n; i++ {
		p := 20 + 16*int(i)
		r := span{binary.LittleEndian.Uint64(body[p:]), binary.LittleEndian.Uint64(body[p+8:])}
		if r.lo <= prev || r.hi < r.lo || r.hi == ^uint64(0) {
			return ackState{}, fmt.Errorf("%w: range %d [%d,%d] out of order", errBadAck, i, r.lo, r.hi)
		}
		st.ranges = append(st.ranges, r)
		prev = r.hi + 1 // ranges are never adjacent
	}
	return st, nil
}

func readAckFile(dir string) (ackState, error) {
	f, err := os.Open(filepath.Join(dir, ackFileName))
	if err != nil {
		return ackState{}, err
	}
	defer f.Close()
	// A valid ack file holds at most maxPersistRanges ranges: read no more than
	// that (plus one byte, to notice a larger one) whatever is on disk.
	b, err := io.ReadAll(io.LimitReader(f, maxAckFileSize+1))
	if err != nil {
		return ackState{}, err
	}
	if len(b) > maxAckFileSize {
		return ackState{}, fmt.Errorf("%w: ack file larger than %d bytes", errBadAck, maxAckFileSize)
	}
	return decodeAck(b)
}

// writeAckFile replaces the ack file atomically: temp, fsync, rename, fsync dir.
func writeAckFile(dir string, st ackState) error {
	tmp := filepath.Join(dir, ackTmpName)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("spool: write ack state: %w", err)
	}
	_, err = f.Write(encodeAck(st))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, ackFileName))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("spool: write ack state: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyRange copies [off, off+n) of src into a new file at path and fsyncs it.
func copyRange(src *os.File, off, n int64, path string, header []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if len(header) > 0 {
		_, err = f.Write(header)
	}
	if err == nil {
		_, err = io.Copy(f, io.NewSectionReader(src, off, n))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
