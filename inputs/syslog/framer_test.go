package syslog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// chunkReader returns data in random chunks of 1 to maxChunk bytes.
type chunkReader struct {
	data     []byte
	rng      *rand.Rand
	maxChunk int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(1+c.rng.IntN(c.maxChunk), len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

type framerResult struct {
	frames []string
	drops  map[string]int
	err    error
}

// runFramer drains a framer over r. With mixed set, it alternates
// non-blocking and blocking calls the way serveConn does.
func runFramer(t *testing.T, r io.Reader, max int, mixed bool) framerResult {
	t.Helper()
	res := framerResult{drops: map[string]int{}}
	f := newFramer(r, max, func(reason string) { res.drops[reason]++ })
	block := true
	for range 1_000_000 {
		fr, err := f.next(block)
		if err == errWouldBlock {
			if block {
				t.Fatal("errWouldBlock from a blocking call")
			}
			block = true
			continue
		}
		if err != nil {
			res.err = err
			return res
		}
		res.frames = append(res.frames, string(fr))
		block = !mixed
	}
	t.Fatal("framer did not end")
	return res
}

func readers(data []byte) map[string]func() io.Reader {
	return map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(data) },
		"onebyte":  func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		"dataerr":  func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"chunks7":  func() io.Reader { return &chunkReader{data: data, rng: rand.New(rand.NewPCG(1, 2)), maxChunk: 7} },
		"chunks61": func() io.Reader { return &chunkReader{data: data, rng: rand.New(rand.NewPCG(3, 4)), maxChunk: 61} },
	}
}

func TestFramer(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name   string
		in     string
		frames []string
		drops  map[string]int
		err    error
	}{
		{"octet", "5 hello6 world!", []string{"hello", "world!"}, nil, io.EOF},
		{"lf", "a\nb\n", []string{"a", "b"}, nil, io.EOF},
		{"nul", "a\x00b\x00", []string{"a", "b"}, nil, io.EOF},
		{"crlf", "a\r\nb\r\n", []string{"a", "b"}, nil, io.EOF},
		{"mixed", "5 hello<13>line\n3 abc\x00x\n13 <13>1 - - - -", []string{"hello", "<13>line", "abc", "x", "<13>1 - - - -"}, nil, io.EOF},
		{"octet then lf", "5 hello\n5 world\n", []string{"hello", "world"}, nil, io.EOF},
		{"octet keeps inner lf and nul", "5 a\x00b\nc", []string{"a\x00b\nc"}, nil, io.EOF},
		{"octet trailing crlf trimmed", "7 hello\r\n", []string{"hello"}, nil, io.EOF},
		{"empty frames skipped", "\n\n\r\n\x00a\n1 \n", []string{"a"}, nil, io.EOF},
		{"exactly max lf", x(32) + "\nok\n", []string{x(32), "ok"}, nil, io.EOF},
		{"exactly max crlf", x(32) + "\r\nok\n", []string{x(32), "ok"}, nil, io.EOF},
		{"exactly max octet", "32 " + x(32) + "3 abc", []string{x(32), "abc"}, nil, io.EOF},
		{"oversize octet skipped", "40 " + x(40) + "3 abc", []string{"abc"}, map[string]int{"oversize": 1}, io.EOF},
		{"oversize octet 33", "33 " + x(33) + "3 abc", []string{"abc"}, map[string]int{"oversize": 1}, io.EOF},
		{"huge octet skipped to eof", "9999999999 abc", nil, map[string]int{"oversize": 1}, io.EOF},
		{"oversize lf skipped", x(33) + "\nok\n", []string{"ok"}, map[string]int{"oversize": 1}, io.EOF},
		{"oversize long lf skipped", x(500) + "\nok\n" + x(100) + "\x00ok2\n", []string{"ok", "ok2"}, map[string]int{"oversize": 2}, io.EOF},
		{"oversize lf at eof", "a\n" + x(100), []string{"a"}, map[string]int{"oversize": 1}, io.EOF},
		{"msglen 10^12 closes", "a\n1000000000000 " + x(20) + "\n3 abc", []string{"a"}, map[string]int{"bad_frame": 1}, errBadFrame},
		{"msglen 11 digits closes", "12345678901 abc\n", nil, map[string]int{"bad_frame": 1}, errBadFrame},
		{"long number line", "12345678901x\n123456789012345678901234\n", []string{"12345678901x", "123456789012345678901234"}, nil, io.EOF},
		{"digits only line", "12345\n2024-01-01 x\n0 abc\n", []string{"12345", "2024-01-01 x", "0 abc"}, nil, io.EOF},
		{"digits at eof", "a\n123", []string{"a", "123"}, nil, io.EOF},
		{"garbage", "\x01\x02\xff\xfe garbage\n\xc3(\n", []string{"\x01\x02\xff\xfe garbage", "\xc3("}, nil, io.EOF},
		{"unterminated lf at eof", "a\nbcd", []string{"a", "bcd"}, nil, io.EOF},
		{"unterminated crlf at eof", "a\nbcd\r", []string{"a", "bcd"}, nil, io.EOF},
		{"truncated octet", "a\n10 abc", []string{"a"}, map[string]int{"truncated": 1}, io.EOF},
		{"empty stream", "", nil, nil, io.EOF},
	}
	for _, tc := range cases {
		for rname, mk := range readers([]byte(tc.in)) {
			for _, mixed := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/mixed=%v", tc.name, rname, mixed), func(t *testing.T) {
					res := runFramer(t, mk(), 32, mixed)
					if !reflect.DeepEqual(res.frames, tc.frames) {
						t.Errorf("frames = %q, want %q", res.frames, tc.frames)
					}
					want := tc.drops
					if want == nil {
						want = map[string]int{}
					}
					if !reflect.DeepEqual(res.drops, want) {
						t.Errorf("drops = %v, want %v", res.drops, want)
					}
					if !errors.Is(res.err, tc.err) {
						t.Errorf("err = %v, want %v", res.err, tc.err)
					}
				})
			}
		}
	}
}

// TestFramerRandomStream checks a long random stream of frames of every
// size around the buffer boundaries, with random framing and oversize
// frames, under several chunkings.
func TestFramerRandomStream(t *testing.T) {
	const max = 100_000
	rng := rand.New(rand.NewPCG(7, 8))
	var stream bytes.Buffer
	var want []string
	oversize := 0
	sizes := []int{1, 2, 100, 4000, 4096, 4097, 8000, 65_000, 65_536, 70_000, max - 1, max, max + 1, 150_000}
	for i := range 300 {
		n := sizes[rng.IntN(len(sizes))]
		if rng.IntN(3) == 0 {
			n = 1 + rng.IntN(300)
		}
		body := make([]byte, n)
		for j := range body {
			body[j] = 'a' + byte((i+j)%26)
		}
		body[0] = '<' // never looks like a MSGLEN
		if rng.IntN(2) == 0 {
			fmt.Fprintf(&stream, "%d %s", n, body)
		} else {
			stream.Write(body)
			if rng.IntN(4) == 0 {
				stream.WriteString("\r\n")
			} else {
				stream.WriteByte('\n')
			}
		}
		if n > max {
			oversize++
		} else {
			want = append(want, string(body))
		}
	}
	data := stream.Bytes()
	for rname, mk := range readers(data) {
		if rname == "onebyte" || rname == "chunks7" {
			continue // too slow for megabytes; covered by TestFramer
		}
		for _, mixed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/mixed=%v", rname, mixed), func(t *testing.T) {
				res := runFramer(t, mk(), max, mixed)
				if res.err != io.EOF {
					t.Fatalf("err = %v", res.err)
				}
				if len(res.frames) != len(want) {
					t.Fatalf("got %d frames, want %d", len(res.frames), len(want))
				}
				for i := range want {
					if res.frames[i] != want[i] {
						t.Fatalf("frame %d: got %d bytes %.20q, want %d bytes %.20q", i, len(res.frames[i]), res.frames[i], len(want[i]), want[i])
					}
				}
				if res.drops["oversize"] != oversize || len(res.drops) > 1 {
					t.Fatalf("drops = %v, want oversize %d", res.drops, oversize)
				}
			})
		}
	}
}

func TestFramerNonBlocking(t *testing.T) {
	f := newFramer(bytes.NewReader([]byte("a\nb\nc")), 32, func(string) {})
	if _, err := f.next(false); err != errWouldBlock {
		t.Fatalf("fresh framer: err = %v, want errWouldBlock", err)
	}
	step := func(block bool, want string, wantErr error) {
		t.Helper()
		fr, err := f.next(block)
		if string(fr) != want || err != wantErr {
			t.Fatalf("next(%v) = %q, %v; want %q, %v", block, fr, err, want, wantErr)
		}
	}
	step(true, "a", nil)
	step(false, "b", nil)
	step(false, "", errWouldBlock)
	step(true, "c", nil)
	step(false, "", io.EOF)
	step(true, "", io.EOF)
}

// TestFramerMemory checks that a connection's buffer starts small, grows
// for bulk reads and big frames, and shrinks back after a huge frame.
func TestFramerMemory(t *testing.T) {
	big := strings.Repeat("y", 1<<20)
	in := "a\n" + strconv.Itoa(len(big)) + " " + big + "b\n"
	f := newFramer(bytes.NewReader([]byte(in)), 2<<20, func(string) {})
	if len(f.buf) != minBufSize {
		t.Fatalf("initial buffer %d, want %d", len(f.buf), minBufSize)
	}
	var got []int
	for {
		fr, err := f.next(true)
		if err != nil {
			break
		}
		got = append(got, len(fr))
	}
	if !reflect.DeepEqual(got, []int{1, len(big), 1}) {
		t.Fatalf("frame sizes %v", got)
	}
	if len(f.buf) > bulkBufSize {
		t.Fatalf("buffer still %d bytes after the big frame", len(f.buf))
	}
}
