// Package dlq lists and replays dead letters: messages the platform
// rejected, kept whole in the dead-letter stream with their original
// subject and the rejection reason in headers.
package dlq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
)

// Letter is one dead letter.
type Letter struct {
	Seq        uint64      `json:"seq"`         // sequence in the dead-letter stream
	Subject    string      `json:"subject"`     // original subject
	Reason     string      `json:"reason"`      // rejection reason
	Detail     string      `json:"detail"`      // human explanation
	ReceivedAt string      `json:"received_at"` // broker time of the original
	StreamSeq  string      `json:"stream_seq"`  // sequence in the main stream
	StoredAt   time.Time   `json:"stored_at"`   // when the dead letter was stored
	Size       int         `json:"size"`
	Data       string      `json:"data"` // the original message
	Header     nats.Header `json:"-"`
}

// Filter chooses dead letters.
type Filter struct {
	Reason string   // only this reason ("" = any)
	Seqs   []uint64 // only these sequences (none = all)
	Limit  int      // at most this many (0 = no limit)
}

func letter(m *jetstream.RawStreamMsg) Letter {
	l := Letter{
		Seq: m.Sequence, Subject: m.Header.Get(contract.HeaderSubject), Reason: m.Header.Get(contract.HeaderReason),
		Detail: m.Header.Get(contract.HeaderDetail), ReceivedAt: m.Header.Get(contract.HeaderReceivedAt),
		StreamSeq: m.Header.Get(contract.HeaderStreamSeq), StoredAt: m.Time, Size: len(m.Data),
		Data: string(m.Data), Header: m.Header,
	}
	if l.Reason == "" { // fall back on the subject deadletter.<municipality>.<publisher>.<reason>
		l.Reason = m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	}
	return l
}

// List reads the chosen dead letters in sequence order without consuming
// them (direct gets: the stream is not changed and no consumer is left
// behind).
func List(ctx context.Context, js jetstream.JetStream, stream string, f Filter) ([]Letter, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", stream, err)
	}
	var out []Letter
	full := func() bool { return f.Limit > 0 && len(out) >= f.Limit }
	if len(f.Seqs) > 0 {
		for _, seq := range f.Seqs {
			m, err := s.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return out, fmt.Errorf("no dead letter with sequence %d in %s", seq, stream)
			}
			if err != nil {
				return out, fmt.Errorf("get dead letter %d: %w", seq, err)
			}
			if l := letter(m); f.Reason == "" || l.Reason == f.Reason {
				out = append(out, l)
			}
			if full() {
				break
			}
		}
		return out, nil
	}
	for seq := uint64(1); !full(); {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("read %s from sequence %d: %w", stream, seq, err)
		}
		if l := letter(m); f.Reason == "" || l.Reason == f.Reason {
			out = append(out, l)
		}
		seq = m.Sequence + 1
	}
	return out, nil
}

// Outcome is what happened to one dead letter in a replay.
type Outcome struct {
	Letter Letter
	Err    error // nil when replayed (or, in a dry run, replayable)
}

// Replay re-publishes each chosen dead letter's original bytes on its
// original subject with a fresh Nats-Msg-Id and the original headers (less
// the dead-letter and broker ones) and waits for the ack. The dead letter
// stays: the stream allows no deletes, and replaying one twice is harmless,
// since the platform stores each event identity once. A dry run only
// reports. each, when not nil, is
// called for every dead letter.
func Replay(ctx context.Context, js jetstream.JetStream, stream string, f Filter, dryRun bool, each func(Outcome)) (replayed, failed int, err error) {
	letters, err := List(ctx, js, stream, f)
	if err != nil {
		return 0, 0, err
	}
	for _, l := range letters {
		o := Outcome{Letter: l}
		switch {
		case l.Subject == "":
			o.Err = fmt.Errorf("dead letter %d has no %s header", l.Seq, contract.HeaderSubject)
		case dryRun:
		default:
			o.Err = replayOne(ctx, js, stream, l)
		}
		if o.Err != nil {
			failed++
		} else {
			replayed++
		}
		if each != nil {
			each(o)
		}
		if ctx.Err() != nil {
			return replayed, failed, ctx.Err()
		}
	}
	return replayed, failed, nil
}

func replayOne(ctx context.Context, js jetstream.JetStream, stream string, l Letter) error {
	msg := nats.NewMsg(l.Subject)
	msg.Data = []byte(l.Data)
	for k, vs := range l.Header {
		if strings.HasPrefix(k, "Smartcity-") || strings.HasPrefix(k, "Nats-") {
			continue
		}
		for _, v := range vs {
			msg.Header.Add(k, v)
		}
	}
	msg.Header.Set(nats.MsgIdHdr, fmt.Sprintf("replay-%s-%d-%d", stream, l.Seq, time.Now().UnixNano()))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("re-publish dead letter %d to %s: %w", l.Seq, l.Subject, err)
	}
	return nil
}
