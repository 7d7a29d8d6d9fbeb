package contract

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// MaxStoredMessage is the largest message (body and headers) the main and
// import streams accept: the 1 MiB payload limit of the NATS servers less
// room for the headers a dead letter adds, so that every message the stream
// accepts can also be dead-lettered whole. Larger ones are refused to the
// publisher by the broker.
const MaxStoredMessage = 1<<20 - 16<<10

// ImportStream is the stream an operator may publish bulk imports to, on
// import.smartcity.>; the main stream sources it back onto smartcity.>.
const ImportStream = "SMARTCITY_IMPORT"

// ImportPrefix is the first token of import subjects.
const ImportPrefix = "import"

// StreamConfig is the configuration of the main stream named name.
//
// The broker's duplicate detection is off on purpose: it keys on
// Nats-Msg-Id alone, so with it one publisher could suppress another
// publisher's event that uses the same id, which the contract forbids
// (identity is municipality, publisher and id). Deduplication is done by the
// ingest service instead. JetStream turns the window off only for a stream
// that sources another one (a zero window otherwise means the 2-minute
// default), which the import stream provides.
func StreamConfig(name string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: name, Subjects: []string{StreamSubjects}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, MaxAge: 7 * 24 * time.Hour, Duplicates: 0,
		MaxMsgSize: MaxStoredMessage, Description: "Assoliment inbound events (CloudEvents, contract v1)",
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
		Retention: jetstream.LimitsPolicy, MaxAge: 24 * time.Hour, MaxMsgSize: MaxStoredMessage,
		// The shortest window JetStream allows: a plain stream cannot turn
		// duplicate detection off.
		Duplicates:  100 * time.Millisecond,
		Description: "Assoliment bulk imports, sourced into the main stream",
	}
}

// DeadLetterStreamConfig is the configuration of the dead-letter stream.
func DeadLetterStreamConfig(name string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: name, Subjects: []string{DeadLetterPrefix + ".>"}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, Duplicates: 2 * time.Minute,
		Description: "Assoliment rejected messages, whole, with their reason in headers",
	}
}
