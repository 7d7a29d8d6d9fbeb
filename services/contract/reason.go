package contract

import "fmt"

// Reason is a machine-readable rejection reason, from a closed set.
type Reason string

// The closed set of rejection reasons.
const (
	ReasonTooLarge               Reason = "too_large"
	ReasonMalformedJSON          Reason = "malformed_json"
	ReasonNotCloudEvent          Reason = "not_cloudevent"
	ReasonUnsupportedSpecVersion Reason = "unsupported_specversion"
	ReasonMissingField           Reason = "missing_field"
	ReasonUnknownType            Reason = "unknown_type"
	ReasonInvalidField           Reason = "invalid_field"
	ReasonSubjectMismatch        Reason = "subject_mismatch"
	ReasonForbiddenPublisher     Reason = "forbidden_publisher"
	ReasonNonFiniteValue         Reason = "non_finite_value"
	ReasonFutureTime             Reason = "future_time"
	ReasonTooLate                Reason = "too_late"
)

// Reasons lists every rejection reason.
var Reasons = []Reason{
	ReasonTooLarge, ReasonMalformedJSON, ReasonNotCloudEvent,
	ReasonUnsupportedSpecVersion, ReasonMissingField, ReasonUnknownType,
	ReasonInvalidField, ReasonSubjectMismatch, ReasonForbiddenPublisher,
	ReasonNonFiniteValue, ReasonFutureTime, ReasonTooLate,
}

// Rejection is why a message was refused: a reason and a human message.
type Rejection struct {
	Reason  Reason
	Message string
}

func (r *Rejection) Error() string { return string(r.Reason) + ": " + r.Message }

func reject(reason Reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Message: fmt.Sprintf(format, args...)}
}
