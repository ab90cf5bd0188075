package tlsconf

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Certificate returns the certificate cfg presents now — the server
// certificate of a Server block's config, the client certificate of a
// Client block's — as its GetCertificate or GetClientCertificate returns
// it (so a renewed file is seen within a second). ok is false when cfg
// presents none.
func Certificate(cfg *tls.Config) (c *tls.Certificate, ok bool) {
	switch {
	case cfg == nil:
		return nil, false
	case cfg.GetCertificate != nil:
		c, _ = cfg.GetCertificate(&tls.ClientHelloInfo{})
	case cfg.GetClientCertificate != nil:
		c, _ = cfg.GetClientCertificate(&tls.CertificateRequestInfo{})
	case len(cfg.Certificates) > 0:
		c = &cfg.Certificates[0]
	}
	return c, c != nil && c.Leaf != nil
}

// ExpiryWarning returns a warning when the certificate cfg presents has
// expired or expires within 30 days of now, else "".
func ExpiryWarning(cfg *tls.Config, now time.Time) string {
	c, ok := Certificate(cfg)
	if !ok {
		return ""
	}
	switch left := c.Leaf.NotAfter.Sub(now); {
	case left <= 0:
		return fmt.Sprintf("the TLS certificate %q expired on %s: peers will refuse it", c.Leaf.Subject.CommonName, c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	case left < 30*24*time.Hour:
		return fmt.Sprintf("the TLS certificate %q expires on %s (in %d days)", c.Leaf.Subject.CommonName, c.Leaf.NotAfter.UTC().Format(time.RFC3339), int(left.Hours()/24))
	}
	return ""
}

// ExpiryCollector exports sluice_tls_certificate_expiry_timestamp_seconds
// for the certificate cfg presents, labelled component ("input" or
// "output") and name (the block's name). It exports nothing while cfg
// presents no certificate. Safe for concurrent use.
type ExpiryCollector struct {
	cfg  *tls.Config
	desc *prometheus.Desc
}

// NewExpiryCollector returns the collector for cfg (nil cfg: one that
// exports nothing).
func NewExpiryCollector(component, name string, cfg *tls.Config) *ExpiryCollector {
	return &ExpiryCollector{cfg: cfg, desc: prometheus.NewDesc("sluice_tls_certificate_expiry_timestamp_seconds",
		"Unix time at which the TLS certificate an input serves or an output presents expires (it follows renewed files).",
		nil, prometheus.Labels{"component": component, "name": name})}
}

// Describe implements prometheus.Collector.
func (e *ExpiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- e.desc }

// Collect implements prometheus.Collector.
func (e *ExpiryCollector) Collect(ch chan<- prometheus.Metric) {
	if c, ok := Certificate(e.cfg); ok {
		ch <- prometheus.MustNewConstMetric(e.desc, prometheus.GaugeValue, float64(c.Leaf.NotAfter.Unix()))
	}
}
