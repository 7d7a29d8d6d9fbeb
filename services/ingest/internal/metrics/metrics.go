// Package metrics defines the ingest service's Prometheus metrics.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/assoliment/assoliment/services/contract"
)

// Outcomes of an event.
const (
	Stored    = "stored"
	Duplicate = "duplicate"
	Rejected  = "rejected"
)

// Steps of a flush, the step label of FlushStep.
const (
	StepDeadLetters = "dead_letters"
	StepLookup      = "lookup"
	StepRemember    = "index"
	StepInsert      = "insert"
	StepPinCheck    = "pin_check"
	StepRaceCheck   = "race_check"
	StepAck         = "ack"
)

// Reasons for a race check, the reason label of RaceChecks.
const (
	RaceSlow          = "slow"
	RaceWriterChanged = "writer_changed"
	RaceRedelivered   = "redelivered"
)

// Metrics of the ingest service, registered on their own registry.
type Metrics struct {
	Registry       *prometheus.Registry
	Events         *prometheus.CounterVec
	Rejections     *prometheus.CounterVec
	BatchSize      prometheus.Histogram
	InsertDuration prometheus.Histogram
	InsertErrors   prometheus.Counter
	Pending        prometheus.Gauge
	ClickHouseUp   prometheus.Gauge
	// DeadLettersTrimmed counts dead letters stored without some of their
	// message's original headers (JetStream's 64 KiB header limit).
	DeadLettersTrimmed prometheus.Counter
	// Terminated counts messages the dead-letter stream refused even
	// without their headers: left in the main stream, never redelivered.
	Terminated prometheus.Counter
	// FlushStep times each step of a flush.
	FlushStep *prometheus.HistogramVec
	// RaceChecks counts batches checked for identities stored twice, by
	// why they were.
	RaceChecks *prometheus.CounterVec
	// GivenBack counts messages given back to the server because another
	// replica took the consumer over.
	GivenBack prometheus.Counter
}

// UnknownPublisher is the publisher label of a rejection whose subject names
// no configured publisher: label values stay bounded whatever is sent.
const UnknownPublisher = "unknown"

// New creates and registers the metrics, with Go and process collectors.
// publishers are the configured publishers, the only publisher label
// values besides UnknownPublisher; every rejection series starts at 0.
func New(publishers ...string) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartcity_ingest_events_total",
			Help: "Events handled by the ingest service, by CloudEvents type and outcome (stored, duplicate, rejected).",
		}, []string{"type", "outcome"}),
		Rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartcity_ingest_rejections_total",
			Help: "Messages sent to the dead-letter stream, by rejection reason and publisher (the subject's publisher token when it is a configured publisher, else unknown).",
		}, []string{"reason", "publisher"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "smartcity_ingest_batch_size",
			Help:    "Messages per flush.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		InsertDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "smartcity_ingest_insert_duration_seconds",
			Help:    "Time to look up stored identities and insert one batch into ClickHouse.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2.5, 10),
		}),
		InsertErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smartcity_ingest_insert_errors_total",
			Help: "Failed ClickHouse look-ups or inserts (each is retried).",
		}),
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smartcity_ingest_consumer_pending_messages",
			Help: "Messages in the stream not yet delivered to the ingest consumer.",
		}),
		ClickHouseUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smartcity_ingest_clickhouse_up",
			Help: "1 when the last ClickHouse operation succeeded, 0 during an outage.",
		}),
		DeadLettersTrimmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smartcity_ingest_dead_letters_trimmed_total",
			Help: "Dead letters stored without some of the original headers, which exceeded JetStream's 64 KiB header limit (the dead letter says how many).",
		}),
		Terminated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smartcity_ingest_terminated_total",
			Help: "Rejected messages the dead-letter stream refused even without their headers; they stay in the main stream until its age limit and are not redelivered.",
		}),
		FlushStep: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "smartcity_ingest_flush_step_seconds",
			Help:    "Time of each step of a flush: dead_letters, lookup, index (recording identities), insert, pin_check, race_check, ack.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"step"}),
		RaceChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartcity_ingest_race_checks_total",
			Help: "Batches checked for identities stored twice by two writers, by reason: slow (the batch's ClickHouse step took 2 s or more), writer_changed (another replica took the consumer over), redelivered (messages of a writer that stopped before acknowledging, found stored).",
		}, []string{"reason"}),
		GivenBack: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smartcity_ingest_given_back_total",
			Help: "Messages given back to the server unwritten because another replica took the consumer over.",
		}),
	}
	r.MustRegister(m.Events, m.Rejections, m.BatchSize, m.InsertDuration, m.InsertErrors, m.Pending, m.ClickHouseUp,
		m.DeadLettersTrimmed, m.Terminated, m.FlushStep, m.RaceChecks, m.GivenBack,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, t := range contract.Types {
		for _, o := range []string{Stored, Duplicate, Rejected} {
			m.Events.WithLabelValues(t, o)
		}
	}
	for _, r := range []string{RaceSlow, RaceWriterChanged, RaceRedelivered} {
		m.RaceChecks.WithLabelValues(r)
	}
	for _, r := range contract.Reasons {
		for _, p := range append(publishers, UnknownPublisher) {
			m.Rejections.WithLabelValues(string(r), p)
		}
	}
	return m
}
