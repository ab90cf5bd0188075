package archive

import (
	"bytes"
	"runtime"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// minPart is the least input per gzip member when a chunk is split to be
// compressed on several cores. Below it the goroutine hand-off and the
// per-member dictionary reset cost more than they win.
const minPart = 256 << 10

// compressor turns a chunk of lines into complete gzip members. A chunk of
// at least 2×minPart is split at line boundaries into up to GOMAXPROCS
// parts that are compressed concurrently, one member each; concatenated
// members are one valid gzip stream, and each still holds whole lines.
//
// Measured on this project's shared 2-core box with 1 MiB batches of
// 258-byte RFC 5424 lines; CPU time per batch, and the best wall-clock
// throughput of several runs (the neighbours' load swung it 2×):
//
//	                          level 1               level 6
//	one member                3.1 ms CPU, 338 MB/s  6.7 ms CPU, 161 MB/s
//	two parallel members      3.5 ms CPU, 606 MB/s  7.3 ms CPU, 282 MB/s
//	klauspost/pgzip 2 blocks  3.6 ms CPU, 309 MB/s  8.5 ms CPU, 145 MB/s
//
// Output size grows by 0.03 percentage points with two members. pgzip
// (one member, 256 KiB–1 MiB blocks) spent more CPU and gained no wall time
// with 1 MiB batches, so it is not used.
type compressor struct {
	level   int
	workers []*zworker
	parts   [][]byte
}

type zworker struct {
	zw  *gzip.Writer
	out appendWriter
	buf []byte // output of a parallel part
}

// appendWriter is an io.Writer appending to a byte slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func newCompressor(level int) *compressor { return &compressor{level: level} }

func (c *compressor) worker(i int) *zworker {
	for len(c.workers) <= i {
		zw, err := gzip.NewWriterLevel(nil, c.level)
		if err != nil {
			panic(err) // level was validated
		}
		c.workers = append(c.workers, &zworker{zw: zw})
	}
	return c.workers[i]
}

// member appends one gzip member holding src to dst.
func (w *zworker) member(dst, src []byte) []byte {
	w.out.b = dst
	w.zw.Reset(&w.out)
	// Writes to an appendWriter cannot fail.
	w.zw.Write(src)
	w.zw.Close()
	dst = w.out.b
	w.out.b = nil
	return dst
}

// compress appends the gzip members for src to dst.
func (c *compressor) compress(dst, src []byte) []byte {
	n := min(runtime.GOMAXPROCS(0), len(src)/minPart)
	if n <= 1 {
		return c.worker(0).member(dst, src)
	}
	c.parts = splitLines(c.parts[:0], src, n)
	var wg sync.WaitGroup
	for i := 1; i < len(c.parts); i++ {
		w, part := c.worker(i), c.parts[i]
		wg.Go(func() { w.buf = w.member(w.buf[:0], part) })
	}
	dst = c.worker(0).member(dst, c.parts[0])
	wg.Wait()
	for i := 1; i < len(c.parts); i++ {
		dst = append(dst, c.workers[i].buf...)
	}
	clear(c.parts)
	return dst
}

// splitLines cuts src into about n parts of similar size, each ending in
// '\n' where src has one.
func splitLines(parts [][]byte, src []byte, n int) [][]byte {
	for i := n; i > 1 && len(src) > 0; i-- {
		cut := len(src) / i
		if j := bytes.IndexByte(src[cut:], '\n'); j >= 0 {
			cut += j + 1
		} else {
			cut = len(src)
		}
		parts = append(parts, src[:cut])
		src = src[cut:]
	}
	if len(src) > 0 {
		parts = append(parts, src)
	}
	return parts
}
