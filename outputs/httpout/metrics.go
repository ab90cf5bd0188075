package httpout

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/internal/tlsconf"
)

// Request classes of sluice_http_requests_total.
const (
	class2xx = iota
	class4xx
	class5xx
	classError // no response (connection error, timeout) or a 1xx/3xx
	numClasses
)

var classNames = [numClasses]string{class2xx: "2xx", class4xx: "4xx", class5xx: "5xx", classError: "error"}

// metrics are one output's collectors, all with the constant label
// output=<name>. Nothing is registered globally: the router registers the
// output (a prometheus.Collector) on the daemon's registry.
type metrics struct {
	requests     *prometheus.CounterVec
	byClass      [numClasses]prometheus.Counter
	retries      prometheus.Counter
	sentBytes    prometheus.Counter
	duration     prometheus.Histogram
	rejected     prometheus.Counter
	deadLettered prometheus.Counter
	expiry       *tlsconf.ExpiryCollector // nil without a tls block
}

// durationBuckets cover a fast local collector up to the default timeout.
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

func newMetrics(name string) *metrics {
	cl := prometheus.Labels{"output": name}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sluice", Subsystem: "http", Name: "requests_total", ConstLabels: cl,
			Help: "HTTP requests by outcome: 2xx, 4xx, 5xx, or error (no response, or a 1xx/3xx).",
		}, []string{"class"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sluice", Subsystem: "http", Name: "retries_total", ConstLabels: cl,
			Help: "Requests that failed retryably (connection error, timeout, 3xx, 408, 429, 5xx, or an unwritable dead-letter file); their events are sent again.",
		}),
		sentBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sluice", Subsystem: "http", Name: "sent_bytes_total", ConstLabels: cl,
			Help: "Request body bytes as sent (after compression) of requests that got a response.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "sluice", Subsystem: "http", Name: "request_duration_seconds", ConstLabels: cl,
			Help:    "Time from sending a request to reading its response (or failing), whatever the outcome.",
			Buckets: durationBuckets,
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sluice", Subsystem: "http", Name: "rejected_events_total", ConstLabels: cl,
			Help: "Events the server rejected permanently (4xx other than 408/429, or 413 for a single event); dead-lettered or dropped.",
		}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sluice", Subsystem: "http", Name: "dead_lettered_events_total", ConstLabels: cl,
			Help: "Rejected events written to dead_letter_file.",
		}),
	}
	for c := range m.byClass {
		m.byClass[c] = m.requests.WithLabelValues(classNames[c])
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	cs := []prometheus.Collector{m.requests, m.retries, m.sentBytes, m.duration, m.rejected, m.deadLettered}
	if m.expiry != nil {
		cs = append(cs, m.expiry) // with a client certificate
	}
	return cs
}

// classOf maps a status code to its class.
func classOf(status int) int {
	switch status / 100 {
	case 2:
		return class2xx
	case 4:
		return class4xx
	case 5:
		return class5xx
	}
	return classError
}

// Describe implements prometheus.Collector.
func (o *output) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range o.m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector; it is safe during Write.
func (o *output) Collect(ch chan<- prometheus.Metric) {
	for _, c := range o.m.collectors() {
		c.Collect(ch)
	}
}
