package contract

import "strings"

// Dead letters: every rejected message is stored whole in the dead-letter
// stream, with its original subject and the reason in headers.
const (
	// DeadLetterStream is the default name of the dead-letter stream.
	DeadLetterStream = "SMARTCITY_DLQ"
	// DeadLetterPrefix is the first token of dead-letter subjects:
	// deadletter.<municipality>.<publisher>.<reason>.
	DeadLetterPrefix = "deadletter"
	// Unknown stands for a municipality or publisher that a rejected
	// message's subject does not name validly.
	Unknown = "unknown"

	HeaderSubject    = "Smartcity-Subject"       // the original subject
	HeaderReason     = "Smartcity-Reason"        // the rejection Reason
	HeaderDetail     = "Smartcity-Reason-Detail" // the human message
	HeaderStreamSeq  = "Smartcity-Stream-Seq"    // sequence in the main stream
	HeaderReceivedAt = "Smartcity-Received-At"   // broker time of the original, RFC 3339
	// HeaderDropped says which of the original headers a dead letter lacks:
	// JetStream limits a message's headers to 64 KiB, so the ingest keeps
	// the original headers within DeadLetterHeaderBudget and records here
	// how many values and bytes it left out.
	HeaderDropped = "Smartcity-Dropped-Headers"
)

// DeadLetterHeaderBudget is the most header bytes a dead letter carries,
// below JetStream's limit of 65,535, so that no message's headers can make
// its dead letter impossible to store.
const DeadLetterHeaderBudget = 60 << 10

// DeadLetterSubject is the subject a message received on subject and
// rejected for reason is kept on: deadletter.<municipality>.<publisher>.<reason>,
// with Unknown for a token the subject does not name validly. Dead letters
// are thus addressable per publisher: the broker lets each publisher read
// only its own.
func DeadLetterSubject(subject string, reason Reason) string {
	municipality, publisher := Unknown, Unknown
	if t := strings.Split(subject, "."); len(t) == 4 && t[0] == SubjectPrefix {
		if ValidSlug(t[1]) {
			municipality = t[1]
		}
		if ValidSlug(t[2]) {
			publisher = t[2]
		}
	}
	return DeadLetterPrefix + "." + municipality + "." + publisher + "." + string(reason)
}

// DeadLetterSubjects is the filter of the dead letters of one publisher in
// one municipality; "*" matches any.
func DeadLetterSubjects(municipality, publisher string) string {
	return DeadLetterPrefix + "." + municipality + "." + publisher + ".>"
}
