package service_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/assoliment/assoliment/services/contract"
)

const (
	structured = "application/cloudevents+json"
	batch      = "application/cloudevents-batch+json"
)

// A 202 means the event is in the stream, byte for byte, on the subject
// its envelope implies, with Nats-Msg-Id set; the token never travels on.
func TestStructuredEventStoredBeforeTheAnswer(t *testing.T) {
	e := start(t)
	body := measurement(t, "m-1", "terrassa", provider)
	a := e.post(t, e.tokens[provider], structured, body)
	if a.code != http.StatusAccepted {
		t.Fatalf("got %d %s", a.code, a.body)
	}
	var got struct{ ID, Subject string }
	a.decode(t, &got)
	subject := "smartcity.terrassa.fcc-medi-ambient.measurement"
	if got.ID != "m-1" || got.Subject != subject {
		t.Fatalf("answer %s", a.body)
	}
	m := e.stored(t, subject)
	if !bytes.Equal(m.Data, body) {
		t.Fatalf("stored %s, sent %s", m.Data, body)
	}
	if m.Header.Get(nats.MsgIdHdr) != "m-1" || m.Header.Get("Content-Type") != structured {
		t.Fatalf("headers %v", m.Header)
	}
	if len(m.Header) != 2 {
		t.Fatalf("only Nats-Msg-Id and Content-Type travel on, got %v", m.Header)
	}
	// What the ingest will judge: the same verdict.
	if _, rej := contract.DecodeMessage(m.Subject, m.Header, m.Data, contract.Rules{Now: time.Now()}); rej != nil {
		t.Fatalf("stored message rejected by the contract: %v", rej)
	}
	// The content type may carry parameters.
	if a := e.post(t, e.tokens[provider], structured+"; charset=utf-8", measurement(t, "m-2", "sabadell", provider)); a.code != http.StatusAccepted {
		t.Fatalf("with charset: %d %s", a.code, a.body)
	}
	if v := e.metric(t, "smartcity_gateway_events_total", `publisher="fcc-medi-ambient"`, `outcome="accepted"`); v != 2 {
		t.Fatalf("accepted events metric %v", v)
	}
}

// Every answer of a single event, each with a JSON body that names the
// reason and explains it.
func TestSingleEventAnswers(t *testing.T) {
	e := start(t)
	tok := e.tokens[provider]
	ev := func(mut func(*contract.Event)) []byte {
		x := &contract.Event{ID: "a-1", Source: "urn:provider:" + provider, Type: contract.TypeKPIMeasured,
			Time: time.Now().Add(-time.Hour), Municipality: "sabadell", Publisher: provider,
			Data: &contract.KPIMeasured{Service: "waste-collection", KPI: "containers-emptied-on-time", Value: 1}}
		mut(x)
		return marshal(t, x)
	}
	valid := ev(func(*contract.Event) {})

	t.Run("401 without a token", func(t *testing.T) {
		a := e.post(t, "", structured, valid)
		a.problem(t, 401, "unauthorized")
		if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
		}
	})
	t.Run("401 with an unknown token", func(t *testing.T) {
		a := e.post(t, tok+"x", structured, valid)
		a.problem(t, 401, "unauthorized")
		if !strings.Contains(a.header.Get("WWW-Authenticate"), "invalid_token") {
			t.Fatalf("WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
		}
	})
	t.Run("401 with another scheme", func(t *testing.T) {
		e.post(t, "", structured, valid, "Authorization", "Basic "+tok).problem(t, 401, "unauthorized")
	})
	t.Run("415 for another content type", func(t *testing.T) {
		e.post(t, tok, "application/json", valid).problem(t, 415, "unsupported_media_type")
		e.post(t, tok, "", valid).problem(t, 415, "unsupported_media_type")
	})
	for _, c := range []struct {
		name   string
		body   []byte
		reason contract.Reason
	}{
		{"malformed JSON", []byte(`{"specversion":"1.0",`), contract.ReasonMalformedJSON},
		{"not a CloudEvent", []byte(`{"id":"x"}`), contract.ReasonNotCloudEvent},
		{"unknown type", ev(func(x *contract.Event) { x.Type = "cat.smartcity.kpi.guessed.v1" }), contract.ReasonUnknownType},
		{"catalog event from a provider", ev(func(x *contract.Event) {
			x.Type, x.Data = contract.TypeServiceRetired, &contract.ServiceRetired{Service: "waste-collection"}
		}), contract.ReasonForbiddenPublisher},
		{"string value", bytes.Replace(valid, []byte(`"value":1`), []byte(`"value":"NaN"`), 1), contract.ReasonNonFiniteValue},
		{"future time by the gateway's clock", ev(func(x *contract.Event) { x.Time = time.Now().Add(10 * time.Minute) }), contract.ReasonFutureTime},
		{"too late", ev(func(x *contract.Event) { x.Time = time.Now().Add(-401 * 24 * time.Hour) }), contract.ReasonTooLate},
	} {
		t.Run("400 "+c.name, func(t *testing.T) {
			if !bytes.Contains(c.body, []byte("NaN")) && c.reason == contract.ReasonNonFiniteValue {
				t.Fatal("test event not built")
			}
			e.post(t, tok, structured, c.body).problem(t, 400, string(c.reason))
		})
	}
	t.Run("403 for another publisher", func(t *testing.T) {
		d := e.post(t, tok, structured, ev(func(x *contract.Event) { x.Publisher = otherCompany })).problem(t, 403, "forbidden")
		if !strings.Contains(d, otherCompany) {
			t.Fatalf("detail %q", d)
		}
	})
	t.Run("403 for another municipality", func(t *testing.T) {
		e.post(t, tok, structured, ev(func(x *contract.Event) { x.Municipality = "lleida" })).problem(t, 403, "forbidden")
		// The other company's token is for sabadell only.
		e.post(t, e.tokens[otherCompany], structured, ev(func(x *contract.Event) {
			x.Publisher, x.Municipality = otherCompany, "terrassa"
		})).problem(t, 403, "forbidden")
	})
	t.Run("403 for a provider sending the council's catalogue", func(t *testing.T) {
		e.post(t, tok, structured, ev(func(x *contract.Event) {
			x.Publisher, x.Type, x.Data = contract.Council, contract.TypeServiceRetired, &contract.ServiceRetired{Service: "waste-collection"}
		})).problem(t, 403, "forbidden")
	})
	t.Run("202 for the council's catalogue with the council's token", func(t *testing.T) {
		a := e.post(t, e.tokens[contract.Council], structured, ev(func(x *contract.Event) {
			x.Publisher, x.Type, x.Data = contract.Council, contract.TypeServiceRetired, &contract.ServiceRetired{Service: "waste-collection"}
		}))
		if a.code != 202 {
			t.Fatalf("%d %s", a.code, a.body)
		}
	})
	t.Run("413 over 64 KiB", func(t *testing.T) {
		big := bytes.Replace(valid, []byte(`"data":{`), []byte(`"pad":"`+strings.Repeat("x", contract.MaxMessageSize)+`","data":{`), 1)
		e.post(t, tok, structured, big).problem(t, 413, "too_large")
	})
	t.Run("405 and 404", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/events", nil)
		a := do(t, req)
		a.problem(t, 405, "method_not_allowed")
		if a.header.Get("Allow") != "POST" {
			t.Fatalf("Allow %q", a.header.Get("Allow"))
		}
		req, _ = http.NewRequest(http.MethodPost, e.url+"/api/v2/events", nil)
		do(t, req).problem(t, 404, "not_found")
	})
	if v := e.metric(t, "smartcity_gateway_rejections_total", `publisher="fcc-medi-ambient"`, `reason="non_finite_value"`); v != 1 {
		t.Fatalf("rejections metric %v", v)
	}
	if v := e.metric(t, "smartcity_gateway_requests_total", `publisher="unknown"`, `code="401"`); v != 3 {
		t.Fatalf("401 requests metric %v", v)
	}
	if ids := e.storedIDs(t); len(ids) != 1 {
		t.Fatalf("only the council's event may be stored, got %v", ids)
	}
}

// A batch stores its valid events even when others are rejected, and
// lists every rejection with its index, id and reason.
func TestBatchPartialAcceptance(t *testing.T) {
	e := start(t)
	tok := e.tokens[provider]
	dupNames := []byte(`{"specversion":"1.0","id":"dup","id":"dup2"}`)
	items := [][]byte{
		measurement(t, "b-0", "sabadell", provider),
		[]byte(`{"specversion":"1.0","id":"b-1"}`),
		measurement(t, "b-2", "terrassa", provider),
		measurement(t, "b-3", "lleida", provider),
		[]byte(`[1,2]`),
		dupNames,
		bytes.Replace(measurement(t, "b-6", "sabadell", provider), []byte(`0.991`), []byte(`1e999`), 1),
		measurement(t, "b-7", "sabadell", provider),
	}
	body := append(append([]byte("[\n  "), bytes.Join(items, []byte(",\n  "))...), "\n]"...)
	a := e.post(t, tok, batch, body)
	if a.code != 200 {
		t.Fatalf("%d %s", a.code, a.body)
	}
	var got struct {
		Accepted int
		Rejected []struct {
			Index      int
			ID, Reason string
			Detail     string
		}
	}
	a.decode(t, &got)
	want := []string{"1 b-1 missing_field", "3 b-3 forbidden", "4  not_cloudevent", "5 dup malformed_json", "6 b-6 non_finite_value"}
	var rejected []string
	for _, r := range got.Rejected {
		if r.Detail == "" {
			t.Errorf("rejection %d has no detail", r.Index)
		}
		rejected = append(rejected, fmt.Sprintf("%d %s %s", r.Index, r.ID, r.Reason))
	}
	if got.Accepted != 3 || strings.Join(rejected, "|") != strings.Join(want, "|") {
		t.Fatalf("accepted %d, rejected %q; want 3 and %q", got.Accepted, rejected, want)
	}
	// Each accepted event is stored alone, byte for byte as it was in the array.
	if m := e.stored(t, "smartcity.terrassa.fcc-medi-ambient.measurement"); !bytes.Equal(m.Data, items[2]) {
		t.Fatalf("stored %s", m.Data)
	}
	ids := e.storedIDs(t)
	if len(ids) != 3 || ids["b-0"] != 1 || ids["b-2"] != 1 || ids["b-7"] != 1 {
		t.Fatalf("stored %v", ids)
	}
	if v := e.metric(t, "smartcity_gateway_events_total", `publisher="fcc-medi-ambient"`, `outcome="forbidden"`); v != 1 {
		t.Fatalf("forbidden metric %v", v)
	}

	t.Run("empty batch", func(t *testing.T) {
		a := e.post(t, tok, batch, []byte(" [ ] "))
		if a.code != 200 || strings.TrimSpace(string(a.body)) != `{"accepted":0,"rejected":[]}` {
			t.Fatalf("%d %s", a.code, a.body)
		}
	})
	t.Run("whole-request problems", func(t *testing.T) {
		e.post(t, tok, batch, []byte(`{"specversion":"1.0"}`)).problem(t, 400, "not_a_batch")
		e.post(t, tok, batch, []byte(`[{"a":1},`)).problem(t, 400, "malformed_json")
		e.post(t, tok, batch, []byte(`[{"a":1}] [2]`)).problem(t, 400, "malformed_json")
		e.post(t, "", batch, body).problem(t, 401, "unauthorized")
		e.post(t, e.tokens[otherCompany], batch, []byte(`[]`+strings.Repeat(" ", 5<<20))).problem(t, 413, "too_large")
	})
	t.Run("1,001 events", func(t *testing.T) {
		one := measurement(t, "x", "sabadell", provider)
		many := append([]byte("["), bytes.Repeat(append(one, ','), 1001)...)
		many[len(many)-1] = ']'
		d := e.post(t, e.tokens[otherCompany], batch, many).problem(t, 413, "too_many_events")
		if !strings.Contains(d, "1000") {
			t.Fatalf("detail %q", d)
		}
	})
}

// Binary content mode: the attributes as ce- headers, the body is data.
// The event is stored as a NATS binary-mode message that the contract
// judges exactly as the gateway did.
func TestBinaryMode(t *testing.T) {
	e := start(t)
	tok := e.tokens[provider]
	at := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	headers := []string{
		"ce-specversion", "1.0", "ce-id", "bin-1", "ce-source", "urn:provider:" + provider,
		"ce-type", contract.TypeKPIMeasured, "ce-time", at,
		"ce-municipality", "sabadell", "ce-publisher", provider,
		"ce-vendorext", "kept%20as%20sent",
		"X-Other", "not forwarded",
		"Nats-Rollup", "all", "Nats-Expected-Stream", "OTHER", // never forwarded to JetStream
	}
	data := []byte(`{"service":"waste-collection","kpi":"containers-emptied-on-time","value":0.5}`)
	a := e.post(t, tok, "application/json; charset=utf-8", data, headers...)
	if a.code != 202 {
		t.Fatalf("%d %s", a.code, a.body)
	}
	m := e.stored(t, "smartcity.sabadell.fcc-medi-ambient.measurement")
	if !bytes.Equal(m.Data, data) {
		t.Fatalf("stored body %s", m.Data)
	}
	for k, want := range map[string]string{"ce-id": "bin-1", "ce-time": at, "ce-vendorext": "kept%20as%20sent",
		"Content-Type": "application/json; charset=utf-8", nats.MsgIdHdr: "bin-1"} {
		if got := m.Header[k]; len(got) != 1 || got[0] != want {
			t.Errorf("stored header %s = %q, want %q", k, got, want)
		}
	}
	if m.Header.Get("X-Other") != "" || m.Header.Get("Authorization") != "" || m.Header.Get("Nats-Rollup") != "" || m.Header.Get("Nats-Expected-Stream") != "" {
		t.Fatalf("other headers travelled: %v", m.Header)
	}
	if _, rej := contract.DecodeMessage(m.Subject, m.Header, m.Data, contract.Rules{Now: time.Now()}); rej != nil {
		t.Fatalf("stored message rejected by the contract: %v", rej)
	}

	// Same rules, same reasons.
	e.post(t, tok, "application/json", data, headers[:8]...).problem(t, 400, "missing_field")
	bad := append([]string{}, headers...)
	bad[13] = otherCompany // ce-publisher
	e.post(t, tok, "application/json", data, bad...).problem(t, 403, "forbidden")
	e.post(t, tok, "application/json", []byte(`{"service":`), headers...).problem(t, 400, "malformed_json")
	e.post(t, tok, "application/json", bytes.Repeat([]byte(" "), contract.MaxMessageSize+1), headers...).problem(t, 413, "too_large")
}
