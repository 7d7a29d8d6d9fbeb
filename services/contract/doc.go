// Package contract is the Assoliment event contract v1 as Go: the CloudEvents
// envelope and the data of every event type, subjects, validation with the
// closed set of rejection reasons, and a small publisher client.
//
// Everything except the publisher is pure: no I/O, no clocks (the caller
// passes the instant used for the time rules).
package contract
