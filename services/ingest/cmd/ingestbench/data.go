package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/chconn"
)

// The stored measurements are generated inside ClickHouse with INSERT …
// SELECT … FROM numbers(), through the materialized views like any insert.
// Their ids are 32 hexadecimal digits of two hashes of the row number, so
// they spread over the sorting key as UUIDs do; municipalities, publishers
// and services are those of the published events, and event times spread
// over the 60 days before the run.

const (
	municipalities = 947
	publishers     = 9
	services       = 20
	spread         = 60 * 24 * 3600 // seconds of event time the data covers
	generateChunk  = 20_000_000     // rows per insert, to bound the server's memory
)

// fill brings the measurements generated so far from have to want rows.
func fill(ctx context.Context, c *chconn.Conn, at time.Time, have, want uint64) error {
	for from := have; from < want; from += generateChunk {
		n := min(generateChunk, want-from)
		q := fmt.Sprintf(`INSERT INTO %s (municipality, publisher, id, service, kpi, value, time, time_ms, time_ns, source, stream_seq, ingested_at, version)
			SELECT concat('m', toString(n %% %d)), concat('p', toString(intDiv(n, %d) %% %d)),
				concat(lower(hex(cityHash64(n, 'a'))), lower(hex(cityHash64(n, 'b')))),
				concat('s', toString(n %% %d)), 'k', toFloat64(n %% 100),
				toDateTime(%d - (n * 7919) %% %d) AS t, 0, 0, 'urn:bench', n + 1, t, 18446744073709551615 - n
			FROM (SELECT number AS n FROM numbers(%d, %d))`,
			c.Table("measurements"), municipalities, municipalities, publishers, services, at.Unix(), spread, from, n)
		if err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("generate rows %d to %d: %w", from, from+n, err)
		}
	}
	return nil
}

// events makes n measurements of a run: ids random like UUIDs, from the
// generated municipalities and publishers, event times in the two days
// before at (steady traffic: one or two months of the index).
func events(n int, at time.Time, seed uint64) []*contract.Event {
	rng := rand.New(rand.NewPCG(seed, 11))
	out := make([]*contract.Event, n)
	for i := range out {
		m := rng.IntN(municipalities)
		out[i] = &contract.Event{
			ID:           fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64()),
			Source:       "urn:bench",
			Type:         contract.TypeKPIMeasured,
			Time:         at.Add(-time.Duration(rng.Int64N(int64(48 * time.Hour)))),
			Municipality: fmt.Sprintf("m%d", m),
			Publisher:    fmt.Sprintf("p%d", rng.IntN(publishers)),
			Data:         &contract.KPIMeasured{Service: fmt.Sprintf("s%d", rng.IntN(services)), KPI: "k", Value: rng.Float64() * 100},
		}
	}
	return out
}

// publish sends evs to the stream and waits for every acknowledgement; it
// returns the rate the broker acknowledged them at.
func publish(ctx context.Context, js jetstream.JetStream, evs []*contract.Event) (float64, error) {
	var failed atomic.Int64
	pub := contract.NewPublisher(js, contract.WithMaxInFlight(4096), contract.WithResults(func(r contract.Result) {
		if r.Err != nil {
			failed.Add(1)
		}
	}))
	start := time.Now()
	for _, ev := range evs {
		if err := pub.Publish(ctx, ev); err != nil {
			return 0, err
		}
	}
	if err := pub.Wait(ctx); err != nil {
		return 0, err
	}
	if n := failed.Load(); n > 0 {
		return 0, fmt.Errorf("%d publishes not acknowledged", n)
	}
	return float64(len(evs)) / time.Since(start).Seconds(), nil
}

// consumeOnly reads and acknowledges the n messages of the stream from
// sequence first on with a plain durable pull consumer of its own, and
// returns their rate and the messages.
func consumeOnly(ctx context.Context, js jetstream.JetStream, first uint64, n int) ([]jetstream.Msg, float64, error) {
	cons, err := js.CreateOrUpdateConsumer(ctx, contract.Stream, jetstream.ConsumerConfig{
		Durable: "bench-consume", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 50000,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: first,
	})
	if err != nil {
		return nil, 0, err
	}
	defer js.DeleteConsumer(context.WithoutCancel(ctx), contract.Stream, "bench-consume")
	it, err := cons.Messages(jetstream.PullMaxMessages(5000))
	if err != nil {
		return nil, 0, err
	}
	defer it.Stop()
	msgs := make([]jetstream.Msg, 0, n)
	start := time.Now()
	for len(msgs) < n {
		m, err := it.Next()
		if err != nil {
			return nil, 0, err
		}
		if err := m.Ack(); err != nil {
			return nil, 0, err
		}
		msgs = append(msgs, m)
	}
	return msgs, float64(n) / time.Since(start).Seconds(), nil
}
