package httpout

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/sluicelog/sluice/internal/tlsconf"
	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/router/event"
)

// output implements outputs.Output, outputs.Opener and
// prometheus.Collector.
type output struct {
	s      settings
	name   string
	urlStr string
	log    *slog.Logger
	tr     *http.Transport
	client *http.Client
	m      *metrics
	dl     *deadLetter // nil without dead_letter_file
	closed atomic.Bool

	// permMu guards permErr, the first rejection of the current batch
	// (senders of one Write report concurrently).
	permMu  sync.Mutex
	permErr error

	// Scratch of one Write (Write is never called concurrently).
	enc     []byte  // encoded pending events, each followed by its separator
	off     []int   // pending item p is enc[off[p]:off[p+1]]; len = items+1
	pend    []int   // pending item p is batch event pend[p]
	outcome []uint8 // per pending item: pending, accepted or rejected
	spans   []span
	senders []*sender
	scratch []byte
	resume  resumeState
}

// Outcomes of a pending item.
const (
	itemPending uint8 = iota
	itemAccepted
	itemRejected
)

// span is the pending items [a, b) sent as one request.
type span struct{ a, b int }

// sender is the scratch of one concurrent request.
type sender struct {
	body []byte // assembled uncompressed body, when it is not a slice of enc
	zbuf bytes.Buffer
	zw   *gzip.Writer
	dead []byte // dead-letter lines
}

// resumeState remembers, across Writes of the same batch, which events an
// earlier attempt settled (accepted, or rejected and dead-lettered), so
// that the router's retry sends only the rest.
//
// The batch is recognised by its event pointers: the router retries with
// the very same events, and holding them here keeps them from being freed
// and their addresses reused by another batch.
type resumeState struct {
	active   bool           // a batch is in progress
	evs      []*event.Event // its events
	done     []bool         // per batch event
	rejected int            // events among done that were rejected
	permErr  error          // the first rejection, for the final report
}

func (r *resumeState) matches(evs []*event.Event) bool {
	if !r.active || len(r.evs) != len(evs) {
		return false
	}
	for i, ev := range evs {
		if r.evs[i] != ev {
			return false
		}
	}
	return true
}

func (r *resumeState) start(evs []*event.Event) {
	r.active = true
	r.evs = append(r.evs[:0], evs...)
	r.done = slices.Grow(r.done[:0], len(evs))[:len(evs)]
	clear(r.done)
	r.rejected = 0
	r.permErr = nil
}

// clear forgets the batch, keeping the slices' capacity but not the
// events.
func (r *resumeState) clear() {
	r.active = false
	clear(r.evs)
	r.evs = r.evs[:0]
	r.rejected = 0
	r.permErr = nil
}

func newOutput(s settings, env outputs.Env) *output {
	log := env.Logger
	if log == nil {
		log = discardLogger()
	}
	dialTimeout := min(s.timeout, 30*time.Second)
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       s.tls,
		TLSHandshakeTimeout:   min(s.timeout, 10*time.Second),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          max(s.maxInFlight, 2),
		MaxIdleConnsPerHost:   max(s.maxInFlight, 2),
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true, // responses are read only for error messages
		WriteBufferSize:       64 << 10,
		ExpectContinueTimeout: 0,
	}
	o := &output{
		s:      s,
		name:   env.Name,
		urlStr: s.url.String(),
		log:    log,
		tr:     tr,
		client: &http.Client{
			Transport: tr,
			// A redirect is a configuration problem (and following one
			// would send credentials elsewhere): it fails the request.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		m: newMetrics(env.Name),
	}
	if s.tls != nil {
		o.m.expiry = tlsconf.NewExpiryCollector("output", env.Name, s.tls)
		if w := tlsconf.ExpiryWarning(s.tls, time.Now()); w != "" {
			log.Warn(w)
		}
	}
	if s.deadLetter != "" {
		o.dl = &deadLetter{path: s.deadLetter, output: env.Name}
	}
	return o
}

// Open opens (creating its directory) the dead-letter file, so that an
// unwritable path stops the daemon from starting.
func (o *output) Open(context.Context) error {
	if o.dl == nil {
		return nil
	}
	if err := o.dl.open(); err != nil {
		return fmt.Errorf("http: %w", err)
	}
	return nil
}

// Close closes idle connections and the dead-letter file.
func (o *output) Close() error {
	if o.closed.Swap(true) {
		return nil
	}
	o.tr.CloseIdleConnections()
	o.resume.clear()
	if o.dl != nil {
		return o.dl.close()
	}
	return nil
}

// Write sends evs; see the package documentation for how requests are
// formed and what each outcome means. It returns nil once every event was
// accepted; an error wrapping outputs.ErrPermanent or an
// *outputs.PartialError once every event was accepted or rejected (and
// dead-lettered), some rejected; ctx.Err() when ctx ends; otherwise a
// retryable error (an *outputs.RetryAfterError when the server sent
// Retry-After).
func (o *output) Write(ctx context.Context, evs []*event.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.closed.Load() {
		return errors.New("http: Write after Close")
	}
	if len(evs) == 0 {
		return nil
	}
	st := &o.resume
	if !st.matches(evs) {
		st.start(evs)
	}
	o.encode(evs, st.done)
	o.split()
	o.permErr = st.permErr
	err := o.sendAll(ctx)
	for p, oc := range o.outcome {
		if oc != itemPending {
			st.done[o.pend[p]] = true
			if oc == itemRejected {
				st.rejected++
			}
		}
	}
	st.permErr = o.permErr
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	rejected, permErr := st.rejected, st.permErr
	st.clear()
	o.trimScratch()
	switch {
	case rejected == 0:
		return nil
	case rejected == len(evs):
		return fmt.Errorf("http: %w: all %d events rejected: %w", outputs.ErrPermanent, rejected, permErr)
	default:
		return &outputs.PartialError{Rejected: rejected, Err: permErr}
	}
}

// encode encodes the events of evs not yet done into o.enc, each followed
// by its separator ('\n', or ',' for json_array), and fills o.off, o.pend
// and o.outcome.
func (o *output) encode(evs []*event.Event, done []bool) {
	o.enc, o.off, o.pend = o.enc[:0], o.off[:0], o.pend[:0]
	sep := byte('\n')
	if o.s.enc == encJSONArray {
		sep = ','
	}
	for i, ev := range evs {
		if done[i] {
			continue
		}
		o.off = append(o.off, len(o.enc))
		o.pend = append(o.pend, i)
		if o.s.enc == encHEC {
			o.enc, o.scratch = o.s.hec.appendHEC(o.enc, o.scratch, ev)
		} else {
			o.enc = jsonFormat.Append(o.enc, ev)
		}
		o.enc = append(o.enc, sep)
	}
	o.off = append(o.off, len(o.enc))
	o.outcome = slices.Grow(o.outcome[:0], len(o.pend))[:len(o.pend)]
	clear(o.outcome)
}

// bodySize is the uncompressed body size of pending items [a, b).
func (o *output) bodySize(a, b int) int {
	n := o.off[b] - o.off[a]
	if o.s.enc == encJSONArray {
		n++ // "[" + items with their commas, the last comma becoming "]"
	}
	return n
}

// split cuts the pending items into spans of at most max_body_bytes (a
// larger item alone).
func (o *output) split() {
	o.spans = o.spans[:0]
	n := len(o.pend)
	for a := 0; a < n; {
		b := a + 1
		for b < n && o.bodySize(a, b+1) <= o.s.maxBody {
			b++
		}
		o.spans = append(o.spans, span{a, b})
		a = b
	}
}

// trimScratch drops buffers a huge batch grew, so that one outlier does not
// pin its memory for the life of the output.
func (o *output) trimScratch() {
	const keep = 16 << 20
	if cap(o.enc) > keep {
		o.enc = nil
	}
	for _, s := range o.senders {
		if cap(s.body) > keep {
			s.body = nil
		}
		if s.zbuf.Cap() > keep {
			s.zbuf = bytes.Buffer{}
		}
		if cap(s.dead) > keep {
			s.dead = nil
		}
	}
}

func (o *output) sender(i int) *sender {
	for len(o.senders) <= i {
		o.senders = append(o.senders, &sender{})
	}
	return o.senders[i]
}

// sendAll sends o.spans, up to max_in_flight at a time, and returns the
// retryable failures (or ctx's error), if any. After a failure no new span
// is started.
func (o *output) sendAll(ctx context.Context) error {
	k := min(o.s.maxInFlight, len(o.spans))
	if k <= 1 {
		s := o.sender(0)
		for _, sp := range o.spans {
			if err := o.deliver(ctx, s, sp.a, sp.b); err != nil {
				return o.summarize([]error{err})
			}
		}
		return nil
	}
	var (
		next atomic.Int64
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	errs := make([]error, k)
	for i := range k {
		s := o.sender(i)
		wg.Go(func() {
			for !stop.Load() {
				j := int(next.Add(1) - 1)
				if j >= len(o.spans) {
					return
				}
				if err := o.deliver(ctx, s, o.spans[j].a, o.spans[j].b); err != nil {
					errs[i] = err
					stop.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	return o.summarize(errs)
}

// summarize merges the failures of one Write: the first is reported, and
// the longest Retry-After any of them asked for is kept.
func (o *output) summarize(errs []error) error {
	var first error
	failed := 0
	var after time.Duration
	hasAfter := false
	for _, err := range errs {
		if err == nil {
			continue
		}
		failed++
		if first == nil {
			first = err
		}
		var ra *outputs.RetryAfterError
		if errors.As(err, &ra) {
			hasAfter = true
			after = max(after, ra.After)
		}
	}
	if first == nil {
		return nil
	}
	settled := 0
	for _, oc := range o.outcome {
		if oc != itemPending {
			settled++
		}
	}
	err := fmt.Errorf("%w (%d of %d events settled; the rest will be sent again)", first, settled, len(o.outcome))
	if failed > 1 {
		err = fmt.Errorf("%w; %d requests failed", err, failed)
	}
	if hasAfter {
		var ra *outputs.RetryAfterError
		if errors.As(first, &ra) && ra.After == after {
			return err // the first already carries the longest delay
		}
		return &outputs.RetryAfterError{After: after, Err: err}
	}
	return err
}

// deliver sends pending items [a, b) and settles them: it returns nil once
// they are all accepted or rejected, and a retryable error (or ctx's)
// otherwise. A 413 splits the span in halves, sent in order.
func (o *output) deliver(ctx context.Context, s *sender, a, b int) error {
	r, err := o.request(ctx, s, a, b)
	if err != nil {
		return err
	}
	switch {
	case r.status >= 200 && r.status < 300:
		o.settle(a, b, itemAccepted)
		return nil
	case r.status == http.StatusRequestEntityTooLarge && b-a > 1:
		o.log.Debug("request too large; splitting it", "events", b-a, "bytes", o.bodySize(a, b))
		mid := a + (b-a)/2
		if err := o.deliver(ctx, s, a, mid); err != nil {
			return err
		}
		return o.deliver(ctx, s, mid, b)
	case permanentStatus(r.status):
		return o.reject(s, a, b, r)
	}
	o.m.retries.Inc()
	serr := &statusError{method: o.s.method, url: o.s.logURL, status: r.status, body: r.body, location: r.location}
	if r.hasRetryAfter {
		return &outputs.RetryAfterError{After: r.retryAfter, Err: serr}
	}
	return serr
}

// permanentStatus reports statuses whose request must not be sent again:
// 4xx except 408 (request timeout) and 429 (too many requests). 413 is
// permanent only for a single event.
func permanentStatus(status int) bool {
	return status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}

func (o *output) settle(a, b int, oc uint8) {
	for p := a; p < b; p++ {
		o.outcome[p] = oc
	}
}

// reject settles items [a, b) the server refused: dead-letters them if
// configured (an error doing so is retryable: they stay pending), counts
// and logs them.
func (o *output) reject(s *sender, a, b int, r reply) error {
	n := b - a
	serr := &statusError{method: o.s.method, url: o.s.logURL, status: r.status, body: r.body}
	if o.dl != nil {
		now := time.Now()
		s.dead = s.dead[:0]
		for p := a; p < b; p++ {
			item := o.enc[o.off[p] : o.off[p+1]-1] // without its separator
			s.dead = o.dl.appendLine(s.dead, now, r.status, r.body, item)
		}
		if err := o.dl.write(s.dead); err != nil {
			o.m.retries.Inc()
			o.log.Error("server rejected events and the dead-letter file cannot be written; they stay queued and are sent again",
				"status", r.status, "events", n, "dead_letter_file", o.dl.path, "err", err)
			return fmt.Errorf("http: %d events rejected (%w) and not dead-lettered: %w", n, serr, err)
		}
		o.m.deadLettered.Add(float64(n))
		o.log.Error("server rejected events permanently; written to the dead-letter file",
			"status", r.status, "events", n, "response", string(r.body), "dead_letter_file", o.dl.path)
	} else {
		o.log.Error("server rejected events permanently; dropped (no dead_letter_file)",
			"status", r.status, "events", n, "response", string(r.body))
	}
	o.m.rejected.Add(float64(n))
	o.settle(a, b, itemRejected)
	o.permMu.Lock()
	if o.permErr == nil {
		o.permErr = serr
	}
	o.permMu.Unlock()
	return nil
}

// reply is what deliver needs of a response.
type reply struct {
	status        int
	body          []byte // first maxResponseSnippet bytes, for non-2xx only
	hasRetryAfter bool
	retryAfter    time.Duration
	location      string
}

// body returns the request body of items [a, b), compressed if configured.
// It may alias o.enc (read-only) or s's buffers.
func (o *output) body(s *sender, a, b int) []byte {
	items := o.enc[o.off[a]:o.off[b]]
	var parts [3][]byte
	pieces := parts[:0]
	if o.s.enc == encJSONArray {
		pieces = append(pieces, []byte{'['}, items[:len(items)-1], []byte{']'})
	} else {
		pieces = append(pieces, items)
	}
	if !o.s.gzip {
		if len(pieces) == 1 {
			return items
		}
		s.body = s.body[:0]
		for _, p := range pieces {
			s.body = append(s.body, p...)
		}
		return s.body
	}
	s.zbuf.Reset()
	if s.zw == nil {
		s.zw, _ = gzip.NewWriterLevel(&s.zbuf, o.s.level) // level validated
	} else {
		s.zw.Reset(&s.zbuf)
	}
	for _, p := range pieces {
		s.zw.Write(p) // writes to a bytes.Buffer cannot fail
	}
	s.zw.Close()
	return s.zbuf.Bytes()
}

// request sends one request for items [a, b). It returns an error only
// when there was no usable response: ctx's error at forced shutdown, or a
// retryable transport failure (counted).
func (o *output) request(ctx context.Context, s *sender, a, b int) (reply, error) {
	body := o.body(s, a, b)
	rctx, cancel := context.WithTimeout(ctx, o.s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, o.s.method, o.urlStr, bytes.NewReader(body))
	if err != nil {
		return reply{}, fmt.Errorf("http: building request: %w", err) // URL validated at load
	}
	req.Header = o.s.header.Clone()
	if o.s.host != "" {
		req.Host = o.s.host
	}
	start := time.Now()
	resp, err := o.client.Do(req)
	if err != nil {
		o.m.duration.Observe(time.Since(start).Seconds())
		o.m.byClass[classError].Inc()
		if ctx.Err() != nil {
			return reply{}, ctx.Err()
		}
		o.m.retries.Inc()
		return reply{}, o.transportError(err, rctx)
	}
	r := reply{status: resp.StatusCode}
	if r.status < 200 || r.status >= 300 {
		r.body, _ = io.ReadAll(io.LimitReader(resp.Body, maxResponseSnippet))
		r.retryAfter, r.hasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		r.location = resp.Header.Get("Location")
	}
	// Drain what is left (bounded) so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	o.m.duration.Observe(time.Since(start).Seconds())
	o.m.sentBytes.Add(float64(len(body)))
	o.m.byClass[classOf(r.status)].Inc()
	return r, nil
}

// transportError describes a request that got no response. A failed TLS
// verification is logged as an error on its own: it is a configuration
// problem (tls.ca_file, tls.server_name) that retrying will not fix, but
// it is retried so nothing is lost while it gets fixed.
func (o *output) transportError(err error, rctx context.Context) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its message repeats the URL, query string included
	}
	if errors.Is(rctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("http: %s %s: no response within timeout %s: %w", o.s.method, o.s.logURL, o.s.timeout, err)
	}
	var (
		verr  *tls.CertificateVerificationError
		uae   x509.UnknownAuthorityError
		hoste x509.HostnameError
		inval x509.CertificateInvalidError
		oe    *net.OpError
	)
	switch {
	case errors.As(err, &verr), errors.As(err, &uae), errors.As(err, &hoste), errors.As(err, &inval):
		o.log.Error("TLS verification of the server's certificate failed; check tls.ca_file and tls.server_name (events stay queued and are retried)",
			"url", o.s.logURL, "err", err)
		return fmt.Errorf("http: %s %s: TLS verification failed: %w", o.s.method, o.s.logURL, err)
	case errors.As(err, &oe) && oe.Op == "remote error": // a TLS alert from the server
		o.log.Error("the server refused the TLS handshake; check tls.cert_file and tls.key_file (events stay queued and are retried)",
			"url", o.s.logURL, "err", err)
		return fmt.Errorf("http: %s %s: TLS handshake refused: %w", o.s.method, o.s.logURL, err)
	}
	return fmt.Errorf("http: %s %s: %w", o.s.method, o.s.logURL, err)
}

// parseRetryAfter parses a Retry-After value: delay-seconds or an
// HTTP-date (a date in the past is 0). ok is false when absent or invalid.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, 86400)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// statusError is a non-2xx response.
type statusError struct {
	method, url string
	status      int
	body        []byte
	location    string
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("http: %s %s: %d %s", e.method, e.url, e.status, http.StatusText(e.status))
	if e.location != "" {
		msg += " (redirect to " + e.location + " not followed; fix the url)"
	}
	if len(e.body) > 0 {
		b := e.body
		if len(b) > 256 {
			b = b[:256]
		}
		msg += fmt.Sprintf(": %q", b)
	}
	return msg
}
