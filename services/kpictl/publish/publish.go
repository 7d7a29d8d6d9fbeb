// Package publish sends event files to JetStream through the contract's
// publisher and counts the broker's acks.
package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/kpictl/input"
)

// Options configure Publish.
type Options struct {
	Rules        input.Rules
	AllowInvalid bool
	MaxInFlight  int
	// OnInvalid is called for each invalid event (published or skipped),
	// with the subject it was judged on.
	OnInvalid func(it input.Item, subject string, rej *contract.Rejection)
	// OnProgress is called after each event is handed to the broker or
	// skipped, with the number of events done so far.
	OnProgress func(done int)
}

// Report counts the outcome.
type Report struct {
	Events         int `json:"events"`
	Sent           int `json:"sent"`
	Acked          int `json:"acked"`
	Duplicates     int `json:"duplicates"` // acked, dropped by the broker as copies
	Failed         int `json:"failed"`
	Invalid        int `json:"invalid"`
	SkippedInvalid int `json:"skipped_invalid"`
	// Failures are the first MaxFailures messages not acknowledged, with
	// the reason.
	Failures []Failure `json:"failures"`
}

// Failure is a message the broker did not acknowledge.
type Failure struct {
	Subject string `json:"subject"`
	ID      string `json:"id"`
	Error   string `json:"error"`
}

// MaxFailures bounds the failures a report lists; all are counted.
const MaxFailures = 10

// Publish judges every item, sends the valid ones (and the invalid ones with
// AllowInvalid) and waits for every ack. The error is only for a context
// that ended; failed messages are counted in the report.
func Publish(ctx context.Context, js jetstream.JetStream, items []input.Item, o Options) (Report, error) {
	rep := Report{Events: len(items), Failures: []Failure{}}
	// Results are reported from within PublishRaw and Wait, on this
	// goroutine.
	fail := func(subject, id string, err error) {
		rep.Failed++
		if len(rep.Failures) < MaxFailures {
			rep.Failures = append(rep.Failures, Failure{Subject: subject, ID: id, Error: err.Error()})
		}
	}
	p := contract.NewPublisher(js, contract.WithMaxInFlight(o.MaxInFlight), contract.WithResults(func(r contract.Result) {
		if r.Err != nil {
			fail(r.Subject, r.ID, r.Err)
			return
		}
		rep.Acked++
		if r.Ack != nil && r.Ack.Duplicate {
			rep.Duplicates++
		}
	}))
	var ctxErr error
	for i, it := range items {
		subject, ev, rej := it.Check(o.Rules)
		id := ""
		if rej != nil {
			rep.Invalid++
			if o.OnInvalid != nil {
				o.OnInvalid(it, subject, rej)
			}
			if !o.AllowInvalid {
				rep.SkippedInvalid++
				progress(o, i+1)
				continue
			}
			id = input.ID(it.Data)
			if id == "" {
				sum := sha256.Sum256(it.Data)
				id = "kpictl-" + hex.EncodeToString(sum[:12])
			}
		} else {
			id = ev.ID
		}
		if err := p.PublishRaw(ctx, subject, id, it.Data); err != nil {
			if ctx.Err() != nil {
				ctxErr = ctx.Err()
				break
			}
			fail(subject, id, err)
		} else {
			rep.Sent++
		}
		progress(o, i+1)
	}
	if ctxErr == nil {
		if err := p.Wait(ctx); err != nil && ctx.Err() != nil {
			ctxErr = ctx.Err()
		}
	}
	return rep, ctxErr
}

func progress(o Options, done int) {
	if o.OnProgress != nil {
		o.OnProgress(done)
	}
}
