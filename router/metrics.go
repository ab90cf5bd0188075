package router

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/inputs"
)

// Metrics are every collector the router and its inputs report. They are
// created unregistered by Load and registered on the injected registerer by
// Router.Run; the README's metrics list documents each one.
type Metrics struct {
	inEvents      *prometheus.CounterVec
	inBytes       *prometheus.CounterVec
	inParseFail   *prometheus.CounterVec
	inDropped     *prometheus.CounterVec
	inConns       *prometheus.GaugeVec
	routeMatches  *prometheus.CounterVec
	unmatched     prometheus.Counter
	routerDropped *prometheus.CounterVec
	outSent       *prometheus.CounterVec
	outErrors     *prometheus.CounterVec
	outRetries    *prometheus.CounterVec
	outDropped    *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	batchSize     *prometheus.HistogramVec
}

func newMetrics() *Metrics {
	c := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "sluice", Name: name, Help: help}, labels)
	}
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "sluice", Name: name, Help: help}, labels)
	}
	return &Metrics{
		inEvents:     c("input_events_total", "Events emitted by an input.", "input"),
		inBytes:      c("input_bytes_total", "Raw bytes of the events emitted by an input.", "input"),
		inParseFail:  c("input_parse_failures_total", "Frames kept but parsed as neither RFC 5424 nor RFC 3164.", "input"),
		inDropped:    c("input_dropped_total", "Frames or connections an input discarded, by reason.", "input", "reason"),
		inConns:      g("input_connections", "Open stream connections of an input.", "input"),
		routeMatches: c("route_matches_total", "Events a route matched.", "route"),
		unmatched: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "sluice", Name: "unmatched_events_total",
			Help: "Events no route matched (they follow the unmatched policy)."}),
		routerDropped: c("router_dropped_total", "Events the routing table discarded: reason=route (drop route) or unmatched (no unmatched outputs).", "reason"),
		outSent:       c("output_sent_events_total", "Events an output's destination accepted.", "output"),
		outErrors:     c("output_errors_total", "Failed Write calls, by kind (retryable, permanent).", "output", "kind"),
		outRetries:    c("output_retries_total", "Batches written again after a retryable failure.", "output"),
		outDropped: c("output_dropped_events_total",
			"Events an output discarded, by reason (permanent, retries_exhausted, queue_full, shutdown).", "output", "reason"),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "sluice", Name: "output_delivery_latency_seconds",
			Help:    "Time from receipt of the oldest event in a batch to its acknowledgement by the destination.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"output"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "sluice", Name: "output_batch_events",
			Help: "Events per batch handed to an output.", Buckets: prometheus.ExponentialBuckets(1, 4, 8)}, []string{"output"}),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.inEvents, m.inBytes, m.inParseFail, m.inDropped, m.inConns, m.routeMatches,
		m.unmatched, m.routerDropped, m.outSent, m.outErrors, m.outRetries, m.outDropped, m.latency, m.batchSize}
}

// register adds every collector to reg.
func (m *Metrics) register(reg prometheus.Registerer) error {
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *Metrics) forInput(name string) *inputs.Metrics {
	return &inputs.Metrics{
		Events:        m.inEvents.WithLabelValues(name),
		Bytes:         m.inBytes.WithLabelValues(name),
		ParseFailures: m.inParseFail.WithLabelValues(name),
		Dropped:       m.inDropped.MustCurryWith(prometheus.Labels{"input": name}),
		Connections:   m.inConns.WithLabelValues(name),
	}
}
