package zmq

import "github.com/prometheus/client_golang/prometheus"

// metrics are one output's collectors, all with the constant label
// output=<name>. Nothing is registered globally: the router registers the
// output (a prometheus.Collector) on the daemon's registry.
type metrics struct {
	sent       prometheus.Counter
	bytes      prometheus.Counter
	timeouts   prometheus.Counter
	errors     prometheus.Counter
	pubDropped prometheus.Counter
	handshake  prometheus.Counter
	peers      prometheus.Gauge
}

func newMetrics(name string) *metrics {
	cl := prometheus.Labels{"output": name}
	counter := func(n, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "sluice", Subsystem: "zmq", Name: n, ConstLabels: cl, Help: help})
	}
	return &metrics{
		sent:  counter("sent_messages_total", "Messages libzmq accepted for sending (zmq_send returned); PUB messages with no matching subscriber included."),
		bytes: counter("sent_bytes_total", "Bytes of those messages (payload, plus the topic frame on PUB)."),
		timeouts: counter("send_timeouts_total",
			"PUSH sends that found no peer with room within send_timeout; Write failed and the router retries the rest of the batch."),
		errors: counter("send_errors_total", "Sends that failed for another reason (the socket or context closing)."),
		pubDropped: counter("pub_dropped_total",
			"PUB messages that at least one matching subscriber did not get because its queue was at send_hwm (libzmq drops them for that subscriber by design)."),
		handshake: counter("handshake_failures_total",
			"Peers that failed the ZMTP/CURVE handshake (wrong key, client not authorized, CURVE on one side only); they get nothing."),
		peers: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "sluice", Subsystem: "zmq", Name: "peers", ConstLabels: cl,
			Help: "Open connections of the output's socket (from libzmq's socket monitor)."}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.sent, m.bytes, m.timeouts, m.errors, m.pubDropped, m.handshake, m.peers}
}

// Describe implements prometheus.Collector.
func (o *Output) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range o.m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector; it is safe during Write.
func (o *Output) Collect(ch chan<- prometheus.Metric) {
	for _, c := range o.m.collectors() {
		c.Collect(ch)
	}
}
