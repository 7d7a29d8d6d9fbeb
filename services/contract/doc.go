// Package contract is the Assoliment event contract v1 as Go: the CloudEvents
// envelope and the data of every event type, subjects, validation with the
// closed set of rejection reasons in both CloudEvents content modes
// (structured, Decode; structured or binary with headers, DecodeMessage),
// the JSON Schemas of the inbound types, and a small publisher client.
//
// Everything except the publisher is pure: no I/O, no clocks (the caller
// passes the instant used for the time rules).
package contract
