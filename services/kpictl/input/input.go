// Package input reads event files — one JSON event, a JSON array of events,
// or JSON Lines — and judges each event against the contract, remembering
// the line it came from.
package input

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/assoliment/assoliment/services/contract"
)

// Item is one event of a file, as raw bytes.
type Item struct {
	File string
	Line int // 1-based line where the event starts
	Data []byte
	// Problem is set when the file could not be split into events at this
	// point (a broken JSON array); Data is then the rest of the file.
	Problem *contract.Rejection
}

// Where is FILE:LINE.
func (it Item) Where() string { return fmt.Sprintf("%s:%d", it.File, it.Line) }

// Stdin is the file name that stands for standard input.
const Stdin = "-"

// ReadFile reads the events of a file, or of stdin when path is "-"; the
// items of standard input name their file "stdin".
func ReadFile(path string, stdin io.Reader) ([]Item, error) {
	if path == Stdin {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read events from standard input: %w", err)
		}
		return Parse("stdin", b), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return Parse(path, b), nil
}

// Parse splits a file's content into events. A file whose content starts
// with '[' is a JSON array; a file holding exactly one JSON object (over any
// number of lines) is one event; anything else is JSON Lines, where every
// non-blank line is an event.
func Parse(name string, data []byte) []Item {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil
	}
	first := len(data) - len(bytes.TrimLeft(data, " \t\r\n"))
	if trimmed[0] == '[' {
		return parseArray(name, data, first)
	}
	if trimmed[0] == '{' && bytes.Count(trimmed, []byte("\n")) > 0 && json.Valid(trimmed) {
		return []Item{{File: name, Line: lineAt(data, first), Data: trimmed}}
	}
	var out []Item
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		out = append(out, Item{File: name, Line: i + 1, Data: line})
	}
	return out
}

func lineAt(data []byte, off int) int { return 1 + bytes.Count(data[:off], []byte("\n")) }

// parseArray splits a JSON array into its elements.
func parseArray(name string, data []byte, start int) []Item {
	dec := json.NewDecoder(bytes.NewReader(data[start:]))
	broken := func(err error) Item {
		off := start + int(dec.InputOffset())
		return Item{File: name, Line: lineAt(data, min(off, len(data))), Data: data[min(off, len(data)):],
			Problem: &contract.Rejection{Reason: contract.ReasonMalformedJSON, Message: "JSON array: " + err.Error()}}
	}
	if _, err := dec.Token(); err != nil { // '['
		return []Item{broken(err)}
	}
	var out []Item
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return append(out, broken(err))
		}
		end := start + int(dec.InputOffset())
		begin := end - len(raw)
		out = append(out, Item{File: name, Line: lineAt(data, begin), Data: data[begin:end]})
	}
	if _, err := dec.Token(); err != nil { // ']'
		return append(out, broken(err))
	}
	return out
}

// Rules are how events are judged.
type Rules struct {
	contract.Rules
	// Subject, when not empty, is the subject every event is judged on;
	// otherwise each event's subject is derived from its envelope.
	Subject string
}

// Check judges the event: it returns the subject it was judged on, and the
// decoded event or the rejection.
func (it Item) Check(r Rules) (string, *contract.Event, *contract.Rejection) {
	subject := r.Subject
	if subject == "" {
		subject = Subject(it.Data)
	}
	if it.Problem != nil {
		return subject, nil, it.Problem
	}
	ev, rej := contract.Decode(subject, it.Data, r.Rules)
	return subject, ev, rej
}

// Subject derives smartcity.<municipality>.<publisher>.<kind> from an
// event's own attributes. Missing or invalid parts become "unknown" (or the
// measurement kind); the contract rejects such events before it compares
// the subject.
func Subject(data []byte) string {
	var env struct {
		Municipality any `json:"municipality"`
		Publisher    any `json:"publisher"`
		Type         any `json:"type"`
	}
	_ = json.Unmarshal(data, &env)
	slug := func(v any) string {
		if s, ok := v.(string); ok && contract.ValidSlug(s) {
			return s
		}
		return "unknown"
	}
	kind := contract.KindMeasurement
	if s, ok := env.Type.(string); ok {
		if k, ok := contract.KindOf(s); ok {
			kind = k
		}
	}
	return contract.Subject(slug(env.Municipality), slug(env.Publisher), kind)
}

// ID is the event's id when it is a usable Nats-Msg-Id, or "".
func ID(data []byte) string {
	var env struct {
		ID any `json:"id"`
	}
	_ = json.Unmarshal(data, &env)
	s, ok := env.ID.(string)
	if !ok || len(s) == 0 || len(s) > 128 || strings.IndexFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
		return ""
	}
	return s
}
