package syslog

import (
	"bytes"
	"errors"
	"io"
	"time"
)

// RFC 6587 framing, detected per frame:
//
//   - octet counting: a frame that starts with a digit 1-9, continues with
//     digits and then a space is "MSGLEN SP MSG", MSG being exactly MSGLEN
//     bytes;
//   - otherwise the frame is newline delimited: it ends at the first LF or
//     NUL; a CR before the LF is stripped.
//
// Every frame is bounded by the configured maximum. An oversize
// octet-counted frame is skipped by streaming exactly MSGLEN bytes to
// nowhere, an oversize line is discarded up to the next delimiter, and the
// connection continues in both cases. A MSGLEN of more than 10 digits (≥ 10
// GB) cannot be skipped in any useful time and is more likely junk or an
// attack: the framer reports errBadFrame and the connection is closed.

const (
	maxLenDigits = 10       // longest MSGLEN accepted, in digits
	minBufSize   = 4 << 10  // initial read buffer of a connection
	bulkBufSize  = 64 << 10 // read buffer size a busy connection grows to
)

var (
	// errWouldBlock is returned by framer.next(false) when no complete
	// frame is buffered and getting one needs a read.
	errWouldBlock = errors.New("no complete frame buffered")
	// errBadFrame is returned when a frame announces a MSGLEN of more than
	// maxLenDigits digits.
	errBadFrame = errors.New("octet-counting MSGLEN longer than 10 digits")
)

// Drop reasons counted by the framer.
const (
	dropOversize  = "oversize"
	dropBadFrame  = "bad_frame"
	dropTruncated = "truncated"
)

// framer splits a byte stream into syslog frames. It is not safe for
// concurrent use; one goroutine owns it.
type framer struct {
	r     io.Reader
	buf   []byte
	start int // first unconsumed byte
	end   int // end of buffered data
	max   int // longest frame accepted (without framing)
	limit int // largest buffer: max + MSGLEN digits + SP + delimiter
	bulk  int // buffer size for bulk reads

	scanned int   // bytes after start known to hold no line delimiter
	skip    int64 // bytes of an oversize octet-counted frame still to discard
	discard bool  // discarding an oversize line up to the next delimiter
	grow    bool  // the last read filled the buffer: grow it for throughput

	err    error               // sticky error from r
	drop   func(reason string) // called once per dropped frame; never nil
	readAt time.Time           // when the last read returned data
}

// newFramer returns a framer reading r, accepting frames of up to max
// bytes. drop is called with the reason of every frame discarded.
func newFramer(r io.Reader, max int, drop func(reason string)) *framer {
	limit := max + maxLenDigits + 2
	bulk := min(bulkBufSize, limit)
	return &framer{
		r:     r,
		buf:   make([]byte, min(minBufSize, limit)),
		max:   max,
		limit: limit,
		bulk:  bulk,
		drop:  drop,
	}
}

// next returns the next non-empty frame, without framing and without
// trailing CR/LF/NUL. The slice aliases the framer's buffer and is valid
// until the next call.
//
// With block false, next returns errWouldBlock instead of reading from the
// underlying reader. Errors: errBadFrame (the stream cannot continue), or
// the reader's error (io.EOF at a clean end) once all complete frames and a
// final unterminated line have been returned. A frame cut short by the end
// of the stream is counted as "truncated"; an unterminated line is
// returned as a frame.
func (f *framer) next(block bool) ([]byte, error) {
	for {
		if f.skip > 0 || f.discard {
			if err := f.discardFrame(block); err != nil {
				return nil, err
			}
			continue
		}
		if f.start == f.end {
			if err := f.fill(block); err != nil {
				return nil, err
			}
			continue
		}
		data := f.buf[f.start:f.end]
		c := data[0]
		if c == '\n' || c == 0 { // empty frame
			f.start++
			continue
		}
		if c >= '1' && c <= '9' {
			j := 1
			for j < len(data) && isDigit(data[j]) {
				j++
			}
			switch {
			case j == len(data):
				// Only digits so far: can't tell the framing yet.
				if len(data) > f.max+1 {
					f.startDiscard()
					continue
				}
				if err := f.fill(block); err != nil {
					if err == errWouldBlock {
						return nil, err
					}
					return f.unterminated(), nil
				}
				continue
			case data[j] == ' ' && j <= maxLenDigits:
				frame, err := f.octetFrame(data, j, block)
				if frame == nil && err == nil {
					continue
				}
				return frame, err
			case data[j] == ' ':
				// A MSGLEN of more than maxLenDigits digits.
				f.drop(dropBadFrame)
				f.start, f.end = 0, 0
				f.err = errBadFrame
				return nil, errBadFrame
			}
		}
		frame, err := f.line(block)
		if frame == nil && err == nil {
			continue
		}
		return frame, err
	}
}

// octetFrame handles "MSGLEN SP MSG" at f.start; data = f.buf[f.start:f.end]
// and data[i] is the space. It returns (nil, nil) when the caller should
// loop (frame skipped, empty, or more data read).
func (f *framer) octetFrame(data []byte, i int, block bool) ([]byte, error) {
	var n int64
	for _, d := range data[:i] {
		n = n*10 + int64(d-'0')
	}
	h := i + 1
	if n > int64(f.max) {
		f.drop(dropOversize)
		f.start += h
		f.skip = n
		f.scanned = 0
		return nil, nil
	}
	total := h + int(n)
	if len(data) >= total {
		f.start += total
		f.scanned = 0
		frame := trimTrailer(data[h:total])
		if len(frame) == 0 {
			return nil, nil
		}
		return frame, nil
	}
	f.reserve(total)
	if err := f.fill(block); err != nil {
		if err != errWouldBlock {
			f.drop(dropTruncated)
			f.start, f.end = 0, 0
		}
		return nil, err
	}
	return nil, nil
}

// line handles a newline-delimited frame at f.start.
func (f *framer) line(block bool) ([]byte, error) {
	data := f.buf[f.start:f.end]
	if i := indexDelim(data[f.scanned:]); i >= 0 {
		i += f.scanned
		f.start += i + 1
		f.scanned = 0
		frame := trimTrailer(data[:i])
		if len(frame) > f.max {
			f.drop(dropOversize)
			return nil, nil
		}
		if len(frame) == 0 {
			return nil, nil
		}
		return frame, nil
	}
	f.scanned = len(data)
	if len(data) > f.max+1 { // +1: a CR may precede the LF
		f.startDiscard()
		return nil, nil
	}
	if err := f.fill(block); err != nil {
		if err == errWouldBlock {
			return nil, err
		}
		if frame := f.unterminated(); frame != nil {
			return frame, nil
		}
		return nil, err
	}
	return nil, nil
}

// unterminated consumes the buffered rest of the stream as a final line
// (nil if it is empty once trimmed).
func (f *framer) unterminated() []byte {
	frame := trimTrailer(f.buf[f.start:f.end])
	f.start, f.end, f.scanned = 0, 0, 0
	if len(frame) == 0 {
		return nil
	}
	return frame
}

// startDiscard drops the oversize line at f.start.
func (f *framer) startDiscard() {
	f.drop(dropOversize)
	f.discard = true
	f.start, f.end, f.scanned = 0, 0, 0
}

// discardFrame continues skipping an oversize frame.
func (f *framer) discardFrame(block bool) error {
	if f.skip > 0 {
		if k := int64(f.end - f.start); k > 0 {
			k = min(k, f.skip)
			f.start += int(k)
			f.skip -= k
			if f.skip == 0 {
				return nil
			}
		}
	} else {
		data := f.buf[f.start:f.end]
		if i := indexDelim(data); i >= 0 {
			f.start += i + 1
			f.discard = false
			return nil
		}
		f.start = f.end
	}
	if err := f.fill(block); err != nil {
		if err != errWouldBlock {
			f.skip, f.discard = 0, false
		}
		return err
	}
	return nil
}

// reserve makes room for a frame of total bytes starting at f.start.
func (f *framer) reserve(total int) {
	if len(f.buf)-f.start >= total {
		return
	}
	if total > len(f.buf) {
		size := len(f.buf)
		for size < total {
			size *= 2
		}
		f.realloc(min(size, f.limit))
		return
	}
	f.compact()
}

// realloc moves the unconsumed data to the start of a new buffer of size bytes.
func (f *framer) realloc(size int) {
	nb := make([]byte, size)
	f.end = copy(nb, f.buf[f.start:f.end])
	f.start = 0
	f.buf = nb
}

func (f *framer) compact() {
	f.end = copy(f.buf, f.buf[f.start:f.end])
	f.start = 0
}

// fill reads more data into the buffer, making room first. It returns the
// sticky read error, or errWouldBlock when block is false.
func (f *framer) fill(block bool) error {
	if f.err != nil {
		return f.err
	}
	if !block {
		return errWouldBlock
	}
	if f.start == f.end {
		f.start, f.end = 0, 0
		if len(f.buf) > f.bulk && f.skip == 0 {
			// Done with a huge frame: give the memory back.
			f.buf = make([]byte, f.bulk)
		}
	}
	if f.grow {
		f.grow = false
		if len(f.buf) < f.bulk {
			f.realloc(min(2*len(f.buf), f.bulk))
		}
	}
	if f.end == len(f.buf) {
		switch {
		case f.start >= len(f.buf)/2 || (f.start > 0 && len(f.buf) >= f.limit):
			f.compact()
		case len(f.buf) < f.limit:
			f.realloc(min(2*len(f.buf), f.limit))
		default:
			// Cannot happen: frames longer than max are discarded first.
			f.err = errors.New("syslog framer: buffer full")
			return f.err
		}
	}
	for range 100 { // io.Reader allows (0, nil); don't spin forever
		space := len(f.buf) - f.end
		n, err := f.r.Read(f.buf[f.end:])
		if n > 0 {
			f.end += n
			f.readAt = time.Now()
			if n == space && space >= len(f.buf)/2 && len(f.buf) < f.bulk {
				f.grow = true
			}
			if err != nil {
				f.err = err
			}
			return nil
		}
		if err != nil {
			f.err = err
			return err
		}
	}
	f.err = io.ErrNoProgress
	return f.err
}

// indexDelim returns the index of the first LF or NUL in b, or -1.
func indexDelim(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return bytes.IndexByte(b, 0)
	}
	if j := bytes.IndexByte(b[:i], 0); j >= 0 {
		return j
	}
	return i
}

// trimTrailer strips trailing LF, CR and NUL bytes: what senders append as
// a terminator, even inside octet-counted frames and datagrams.
func trimTrailer(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case '\n', '\r', 0:
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
