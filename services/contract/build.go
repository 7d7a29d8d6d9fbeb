package contract

import (
	"fmt"
	"time"

	"github.com/go-json-experiment/json"
)

// envelope is the structured-mode JSON form of an event.
type envelope struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Source          string `json:"source"`
	Type            string `json:"type"`
	Time            string `json:"time"`
	Municipality    string `json:"municipality"`
	Publisher       string `json:"publisher"`
	DataContentType string `json:"datacontenttype,omitempty"`
	Data            any    `json:"data"`
}

// Marshal renders the event as a CloudEvents 1.0 structured JSON message.
// Source defaults to urn:smartcity:<publisher> when empty.
func Marshal(e *Event) ([]byte, error) {
	src := e.Source
	if src == "" {
		src = "urn:smartcity:" + e.Publisher
	}
	b, err := json.Marshal(envelope{
		SpecVersion: SpecVersion, ID: e.ID, Source: src, Type: e.Type,
		Time:         e.Time.Format(time.RFC3339Nano),
		Municipality: e.Municipality, Publisher: e.Publisher,
		DataContentType: e.DataContentType, Data: e.Data,
	})
	if err != nil {
		return nil, fmt.Errorf("marshal event %s: %w", e.ID, err)
	}
	return b, nil
}
