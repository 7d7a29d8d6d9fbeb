package contract

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// MaxStoredMessage is the largest message, body and headers together, that
// the main and import streams accept: the contract's 64 KiB plus 16 KiB for
// headers (Nats-Msg-Id, the ce- attributes of binary mode, an MQTT client's
// headers). A message between 64 KiB and this limit is stored and then
// dead-lettered as too_large; a larger one can never be valid and is refused
// to its publisher by the broker, so no publisher can make the platform
// store, hold in memory or dead-letter more than this per message.
const MaxStoredMessage = MaxMessageSize + 16<<10

// MaxDeadLetter is the largest dead letter: a message the main stream
// accepted plus the headers the ingest adds, which it keeps within
// DeadLetterHeaderBudget.
const MaxDeadLetter = MaxStoredMessage + 64<<10

// Default limits of the streams; the ingest service's settings override
// the byte and age limits of the main and dead-letter streams.
const (
	// DefaultStreamMaxAge is how long the main stream keeps messages, so
	// that an ingest outage of up to a week loses nothing.
	DefaultStreamMaxAge = 7 * 24 * time.Hour
	// DefaultStreamMaxBytes bounds the main stream on disk. When full, the
	// broker refuses new messages (the publisher gets an error and may
	// retry) rather than drop messages that may not be stored yet.
	DefaultStreamMaxBytes = 8 << 30
	// DefaultDeadLetterMaxAge and DefaultDeadLetterMaxBytes bound the
	// dead-letter stream; when full, its oldest dead letters go first, so
	// that rejecting a message never waits for room.
	DefaultDeadLetterMaxAge   = 30 * 24 * time.Hour
	DefaultDeadLetterMaxBytes = 10 << 30
	// ImportMaxBytes bounds the bulk-import stream, which keeps messages one
	// day only.
	ImportMaxBytes = 1 << 30
)

// Stream defaults.
const (
	// Stream is the default name of the main stream, capturing smartcity.>.
	Stream = "SMARTCITY"
	// StreamSubjects is what the main stream captures.
	StreamSubjects = SubjectPrefix + ".>"
)

// ImportStream is the stream an operator may publish bulk imports to, on
// import.smartcity.>; the main stream sources it back onto smartcity.>.
const ImportStream = "SMARTCITY_IMPORT"

// ImportPrefix is the first token of import subjects.
const ImportPrefix = "import"

// StreamConfig is the configuration of the main stream named name, with the
// default limits.
//
// The broker's duplicate detection is off on purpose: it keys on
// Nats-Msg-Id alone, so with it one publisher could suppress another
// publisher's event that uses the same id, which the contract forbids
// (identity is municipality, publisher and id). Deduplication is done by the
// ingest service instead. JetStream turns the window off only for a stream
// that sources another one (a zero window otherwise means the 2-minute
// default), which the import stream provides.
//
// Nobody may purge the stream or delete a message from it: a message leaves
// only by age, after the ingest has settled it.
func StreamConfig(name string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: name, Subjects: []string{StreamSubjects}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, MaxAge: DefaultStreamMaxAge, MaxBytes: DefaultStreamMaxBytes,
		Discard: jetstream.DiscardNew, Duplicates: 0, MaxMsgSize: MaxStoredMessage,
		DenyDelete: true, DenyPurge: true,
		Description: "Assoliment inbound events (CloudEvents, contract v1)",
		Sources: []*jetstream.StreamSource{{
			Name: ImportStream,
			SubjectTransforms: []jetstream.SubjectTransformConfig{{
				Source: ImportPrefix + "." + StreamSubjects, Destination: StreamSubjects,
			}},
		}},
	}
}

// ImportStreamConfig is the configuration of the import stream.
func ImportStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: ImportStream, Subjects: []string{ImportPrefix + "." + StreamSubjects}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, MaxAge: 24 * time.Hour, MaxBytes: ImportMaxBytes, Discard: jetstream.DiscardNew,
		MaxMsgSize: MaxStoredMessage,
		// The shortest window JetStream allows: a plain stream cannot turn
		// duplicate detection off.
		Duplicates:  100 * time.Millisecond,
		Description: "Assoliment bulk imports, sourced into the main stream",
	}
}

// DeadLetterStreamConfig is the configuration of the dead-letter stream,
// with the default limits. Dead letters cannot be purged or deleted:
// replaying one leaves it in place (the replayed event is stored once
// whatever the number of replays), and they leave by age or by size.
func DeadLetterStreamConfig(name string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: name, Subjects: []string{DeadLetterPrefix + ".>"}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, MaxAge: DefaultDeadLetterMaxAge, MaxBytes: DefaultDeadLetterMaxBytes,
		Discard: jetstream.DiscardOld, MaxMsgSize: MaxDeadLetter, Duplicates: 2 * time.Minute,
		DenyDelete: true, DenyPurge: true,
		Description: "Assoliment rejected messages, whole, with their reason in headers",
	}
}
