package natsauth

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reading one's own dead letters.
//
// The platform's dead-letter stream keeps every rejected message on
// deadletter.<municipality>.<publisher>.<reason>. For each provider and
// council, a stream in the platform account (DeadLetterStream) copies, by
// JetStream sourcing, only that publisher's dead letters; the publisher's
// account imports two API subjects of that stream alone, stream
// information and direct get, under DeadLetterAPIPrefix. Neither can
// create a consumer, choose where messages are delivered or name another
// stream, so the publisher reads its own dead letters and nothing else.

// DefaultDeadLetterStream is the platform's dead-letter stream name
// (contract.DeadLetterStream).
const DefaultDeadLetterStream = "SMARTCITY_DLQ"

// Account is the account of a provider (role RoleProvider, id the provider
// id) or of a council (RoleCouncil, id the municipality).
func Account(role, id string) string { return role + "-" + id }

// DeadLetterCopy is the stream that copies the dead letters of account,
// with the default dead-letter stream name.
func DeadLetterCopy(account string) string { return DefaultDeadLetterStream + "_" + account }

// DeadLetterStreamConfig is the configuration of the publisher's copy of
// its dead letters: sourced from the platform's dead-letter stream with
// the publisher's filter, bounded by the account limits, oldest out first,
// readable by direct get.
func (p Publisher) DeadLetterStreamConfig(source string, l Limits) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        p.DeadLetters,
		Description: "Dead letters of " + p.Account + " (copied from " + source + ", read by that publisher)",
		Sources:     []*jetstream.StreamSource{{Name: source, FilterSubject: p.DeadLetterFilter}},
		Storage:     jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
		MaxAge: l.DeadLetterAge, MaxMsgs: int64(l.DeadLetterCount), Discard: jetstream.DiscardOld,
		AllowDirect: true,
	}
}

// EnsureDeadLetterStreams creates or updates every publisher's copy of its
// dead letters, through js (the operator's connection to the platform
// account). A new copy starts with the dead letters the platform's stream
// still holds. It returns the names of the streams.
func EnsureDeadLetterStreams(ctx context.Context, js jetstream.JetStream, plan *Plan) ([]string, error) {
	var names []string
	for _, p := range plan.Publishers {
		if _, err := js.CreateOrUpdateStream(ctx, p.DeadLetterStreamConfig(plan.DeadLetterStream, plan.Limits)); err != nil {
			return names, fmt.Errorf("dead-letter stream %s: %w", p.DeadLetters, err)
		}
		names = append(names, p.DeadLetters)
	}
	return names, nil
}

// DeadLetters is a provider's or council's view of its own dead letters,
// through its own connection.
type DeadLetters struct {
	stream jetstream.Stream
}

// OpenDeadLetters opens the dead letters of account (see Account) over nc,
// a connection as that account's user. stream is the name of its copy;
// empty means DeadLetterCopy(account).
func OpenDeadLetters(ctx context.Context, nc *nats.Conn, account, stream string) (*DeadLetters, error) {
	if stream == "" {
		stream = DeadLetterCopy(account)
	}
	js, err := jetstream.NewWithAPIPrefix(nc, DeadLetterAPIPrefix)
	if err != nil {
		return nil, fmt.Errorf("dead letters of %s: %w", account, err)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("dead letters of %s (stream %s): %w", account, stream, err)
	}
	return &DeadLetters{stream: s}, nil
}

// Info is the state of the copy when it was opened: how many dead letters
// it holds and their sequence range.
func (d *DeadLetters) Info() jetstream.StreamState { return d.stream.CachedInfo().State }

// All yields the dead letters from sequence from on (1 for all), one
// direct get each, oldest first, until none is left or ctx ends.
func (d *DeadLetters) All(ctx context.Context, from uint64) iter.Seq2[*jetstream.RawStreamMsg, error] {
	return func(yield func(*jetstream.RawStreamMsg, error) bool) {
		for seq := max(from, 1); ; {
			m, err := d.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(">"))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return
			}
			if err != nil {
				yield(nil, fmt.Errorf("dead letter at or after %d: %w", seq, err))
				return
			}
			if !yield(m, nil) {
				return
			}
			seq = m.Sequence + 1
		}
	}
}
