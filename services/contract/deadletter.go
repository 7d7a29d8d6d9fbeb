package contract

// Dead letters: every rejected message is stored whole in the dead-letter
// stream, with its original subject and the reason in headers.
const (
	// DeadLetterStream is the default name of the dead-letter stream.
	DeadLetterStream = "SMARTCITY_DLQ"
	// DeadLetterPrefix is the first token of dead-letter subjects:
	// deadletter.<reason>.
	DeadLetterPrefix = "deadletter"

	HeaderSubject    = "Smartcity-Subject"       // the original subject
	HeaderReason     = "Smartcity-Reason"        // the rejection Reason
	HeaderDetail     = "Smartcity-Reason-Detail" // the human message
	HeaderStreamSeq  = "Smartcity-Stream-Seq"    // sequence in the main stream
	HeaderReceivedAt = "Smartcity-Received-At"   // broker time of the original, RFC 3339
)

// DeadLetterSubject is the subject a message rejected for reason is kept on.
func DeadLetterSubject(reason Reason) string {
	return DeadLetterPrefix + "." + string(reason)
}

// Stream defaults.
const (
	// Stream is the default name of the main stream, capturing smartcity.>.
	Stream = "SMARTCITY"
	// StreamSubjects is what the main stream captures.
	StreamSubjects = SubjectPrefix + ".>"
)
