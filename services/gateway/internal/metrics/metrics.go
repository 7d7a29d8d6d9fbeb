// Package metrics defines the gateway's Prometheus metrics. The publisher
// label is always a publisher of a configured token, or "unknown", so no
// request can create series.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/assoliment/assoliment/services/contract"
)

// Unknown labels a request whose token is missing or unknown.
const Unknown = "unknown"

// Outcomes of an event.
const (
	Accepted    = "accepted"     // stored in JetStream (202, or counted in a batch's accepted)
	Rejected    = "rejected"     // broke a contract rule (reason in the rejections metric)
	Forbidden   = "forbidden"    // named a publisher or municipality the token is not for
	RateLimited = "rate_limited" // refused with 429
	Unavailable = "unavailable"  // not acknowledged by JetStream (503)
)

// Modes of a request to the events endpoint.
var Modes = []string{"structured", "batch", "binary", "none"}

// Metrics of the gateway, on their own registry.
type Metrics struct {
	Registry   *prometheus.Registry
	Requests   *prometheus.CounterVec
	Events     *prometheus.CounterVec
	Rejections *prometheus.CounterVec
	Duration   *prometheus.HistogramVec
	AckWait    prometheus.Histogram
	Tokens     prometheus.Gauge
	Reloads    *prometheus.CounterVec
	BodyBytes  prometheus.Gauge
}

// New creates and registers the metrics, with Go and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartcity_gateway_requests_total",
			Help: "Requests to POST /api/v1/events, by token publisher (unknown without a valid token) and HTTP status code.",
		}, []string{"publisher", "code"}),
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartcity_gateway_events_total",
			Help: "Events received, by token publisher and outcome (accepted, rejected, forbidden, rate_limited, unavailable).",
		}, []string{"publisher", "outcome"}),
		Rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartcity_gateway_rejections_total",
			Help: "Events refused for breaking the event contract, by token publisher and reason.",
		}, []string{"publisher", "reason"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "smartcity_gateway_request_duration_seconds",
			Help:    "Time to answer POST /api/v1/events, JetStream's acknowledgements included, by content mode.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"mode"}),
		AckWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "smartcity_gateway_ack_wait_seconds",
			Help:    "Time from publishing a request's events to JetStream's last acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}),
		Tokens: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smartcity_gateway_tokens",
			Help: "Tokens in force.",
		}),
		BodyBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smartcity_gateway_request_body_bytes_held",
			Help: "Bytes of request bodies booked by the requests being read or handled (at most 16 x MAX_BATCH_BYTES; beyond, 503).",
		}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartcity_gateway_token_reloads_total",
			Help: "Reads of the tokens file, by result (ok, or error: the previous tokens stay in force).",
		}, []string{"result"}),
	}
	r.MustRegister(m.Requests, m.Events, m.Rejections, m.Duration, m.AckWait, m.Tokens, m.Reloads, m.BodyBytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, mode := range Modes {
		m.Duration.WithLabelValues(mode)
	}
	m.Reloads.WithLabelValues("ok")
	m.Reloads.WithLabelValues("error")
	return m
}

// Publisher registers the zero series of a configured publisher, so rates
// and alerts see it before its first event.
func (m *Metrics) Publisher(p string) {
	for _, o := range []string{Accepted, Rejected, Forbidden, RateLimited, Unavailable} {
		m.Events.WithLabelValues(p, o)
	}
	for _, r := range contract.Reasons {
		m.Rejections.WithLabelValues(p, string(r))
	}
}
