package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/assoliment/assoliment/services/contract"
)

// subjectOf derives smartcity.<municipality>.<publisher>.<kind> from a
// structured event's own attributes. A missing or invalid part becomes
// "unknown" (the kind "measurement"): the contract rejects such an event
// before it compares the subject, so the subject only matters for an event
// whose envelope is valid, and then it is the one the envelope implies.
func subjectOf(raw []byte) string {
	var env struct {
		Municipality any `json:"municipality"`
		Publisher    any `json:"publisher"`
		Type         any `json:"type"`
	}
	_ = json.Unmarshal(raw, &env)
	str := func(v any) string { s, _ := v.(string); return s }
	return subject(str(env.Municipality), str(env.Publisher), str(env.Type))
}

// binarySubject is subjectOf for a binary-mode event's ce- headers.
func binarySubject(h http.Header) string {
	return subject(headerValue(h.Get("ce-municipality")), headerValue(h.Get("ce-publisher")), headerValue(h.Get("ce-type")))
}

func subject(municipality, publisher, eventType string) string {
	slug := func(s string) string {
		if contract.ValidSlug(s) {
			return s
		}
		return "unknown"
	}
	kind, ok := contract.KindOf(eventType)
	if !ok {
		kind = contract.KindMeasurement
	}
	return contract.Subject(slug(municipality), slug(publisher), kind)
}

// headerValue reads a binary-mode header value as the CloudEvents HTTP
// binding writes it (optionally double-quoted, percent-encoded); "" when it
// cannot be read, which the contract then rejects with the reason.
func headerValue(v string) string {
	v = strings.Trim(v, " \t")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = strings.ReplaceAll(v[1:len(v)-1], `\`, "")
	}
	d, err := url.PathUnescape(v)
	if err != nil {
		return ""
	}
	return d
}

// idOf is a structured event's id when it is a string, for the answer.
func idOf(raw []byte) string {
	var env struct {
		ID any `json:"id"`
	}
	_ = json.Unmarshal(raw, &env)
	s, _ := env.ID.(string)
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

// splitBatch returns the events of a JSON array as their bytes within
// body, untouched. Whole-request problems (not JSON, not an array, more
// than max events) are returned as a Problem. Duplicate names and invalid
// UTF-8 inside an event are left for the contract to judge, so they reject
// that event and not the batch.
func splitBatch(body []byte, max int) ([][]byte, *Problem) {
	dec := jsontext.NewDecoder(bytes.NewReader(body), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	malformed := func(err error) ([][]byte, *Problem) {
		return nil, &Problem{Reason: string(contract.ReasonMalformedJSON), Detail: "request body is not valid JSON: " + cleanErr(err)}
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return malformed(err)
	}
	if tok.Kind() != '[' {
		return nil, &Problem{Reason: ReasonNotBatch, Detail: fmt.Sprintf("a batch is a JSON array of events; the body is a JSON %s", contract.KindName(tok.Kind()))}
	}
	var items [][]byte
	for dec.PeekKind() != ']' {
		if len(items) == max {
			return nil, &Problem{Reason: ReasonTooManyEvents, Detail: fmt.Sprintf("a batch holds at most %d events; send the rest in another request", max)}
		}
		v, err := dec.ReadValue()
		if err != nil {
			return malformed(err)
		}
		end := int(dec.InputOffset())
		items = append(items, body[end-len(v):end:end])
	}
	if _, err := dec.ReadToken(); err != nil { // the closing bracket
		return malformed(err)
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return malformed(errors.New("data after the closing bracket of the array"))
	}
	return items, nil
}

// cleanErr drops the library's prefix from a JSON error.
func cleanErr(err error) string {
	s := err.Error()
	for _, p := range []string{"jsontext: ", "json: "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}
