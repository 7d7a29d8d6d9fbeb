package contract

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func rules() Rules { return Rules{Now: now} }

// valid returns a valid message of each type as a generic map, and its subject.
func valid(eventType string) (map[string]any, string) {
	env := map[string]any{
		"specversion":  "1.0",
		"id":           "evt-1",
		"source":       "urn:provider:fcc-medi-ambient",
		"type":         eventType,
		"time":         "2026-11-20T11:00:00+01:00",
		"municipality": "sabadell",
		"publisher":    "fcc-medi-ambient",
	}
	kind, _ := KindOf(eventType)
	switch eventType {
	case TypeServiceRegistered:
		env["data"] = map[string]any{"service": "waste-collection", "name": "Recollida de residus",
			"area": "environment", "delivery": "concession", "provider": "fcc-medi-ambient",
			"reporting_interval_seconds": 900, "open_data": true}
	case TypeServiceRetired:
		env["data"] = map[string]any{"service": "waste-collection"}
	case TypeSLADefined:
		env["data"] = map[string]any{"service": "waste-collection", "kpi": "containers-emptied-on-time",
			"name": "Containers emptied within schedule", "unit": "ratio",
			"direction": "higher_is_better", "target": 0.98, "objective": 0.95}
	case TypeKPIMeasured:
		env["data"] = map[string]any{"service": "waste-collection", "kpi": "containers-emptied-on-time", "value": 0.991}
	case TypeIncidentOpened:
		env["data"] = map[string]any{"service": "street-lighting", "incident": "inc-2026-00042",
			"priority": "high", "resolution_target_seconds": 14400}
	case TypeIncidentResolved:
		env["data"] = map[string]any{"service": "street-lighting", "incident": "inc-2026-00042"}
	}
	if kind == KindCatalog {
		env["publisher"] = Council
	}
	return env, Subject("sabadell", env["publisher"].(string), kind)
}

func encode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeValidEveryType(t *testing.T) {
	for _, typ := range Types {
		env, subj := valid(typ)
		ev, rej := Decode(subj, encode(t, env), rules())
		if rej != nil {
			t.Fatalf("%s: rejected: %v", typ, rej)
		}
		if ev.Type != typ || ev.Municipality != "sabadell" || ev.ID != "evt-1" {
			t.Fatalf("%s: bad envelope %+v", typ, ev)
		}
		if !ev.Time.Equal(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)) {
			t.Fatalf("%s: time %v", typ, ev.Time)
		}
		if ev.Subject() != subj {
			t.Fatalf("%s: subject %q != %q", typ, ev.Subject(), subj)
		}
	}
}

func TestDecodeData(t *testing.T) {
	env, subj := valid(TypeServiceRegistered)
	ev, rej := Decode(subj, encode(t, env), rules())
	if rej != nil {
		t.Fatal(rej)
	}
	want := ServiceRegistered{Service: "waste-collection", Name: "Recollida de residus", Area: "environment",
		Delivery: "concession", Provider: "fcc-medi-ambient", ReportingIntervalSeconds: 900, OpenData: true}
	if got := *ev.Data.(*ServiceRegistered); got != want {
		t.Fatalf("got %+v want %+v", got, want)
	}
	// Defaults: own service without provider, interval and open_data.
	env["data"] = map[string]any{"service": "oac", "area": "citizen-services", "delivery": "own"}
	ev, rej = Decode(subj, encode(t, env), rules())
	if rej != nil {
		t.Fatal(rej)
	}
	want = ServiceRegistered{Service: "oac", Name: "oac", Area: "citizen-services", Delivery: "own",
		Provider: Council, ReportingIntervalSeconds: 3600}
	if got := *ev.Data.(*ServiceRegistered); got != want {
		t.Fatalf("defaults: got %+v want %+v", got, want)
	}
	env, subj = valid(TypeKPIMeasured)
	env["data"].(map[string]any)["value"] = -12.5e3
	ev, rej = Decode(subj, encode(t, env), rules())
	if rej != nil || ev.Data.(*KPIMeasured).Value != -12500 {
		t.Fatalf("measurement: %v %+v", rej, ev)
	}
}

type mutation struct {
	name   string
	typ    string
	edit   func(env map[string]any, subj *string)
	raw    []byte // when set, sent as is
	reason Reason
}

func data(env map[string]any) map[string]any { return env["data"].(map[string]any) }

func setData(k string, v any) func(map[string]any, *string) {
	return func(env map[string]any, _ *string) { data(env)[k] = v }
}

func delData(k string) func(map[string]any, *string) {
	return func(env map[string]any, _ *string) { delete(data(env), k) }
}

func setEnv(k string, v any) func(map[string]any, *string) {
	return func(env map[string]any, _ *string) { env[k] = v }
}

func delEnv(k string) func(map[string]any, *string) {
	return func(env map[string]any, _ *string) { delete(env, k) }
}

// rejectionCases are messages refused, each with its reason.
func rejectionCases() []mutation {
	long := strings.Repeat("a", 63)
	return []mutation{
		{name: "truncated json", raw: []byte(`{"specversion":"1.0","id":`), reason: ReasonMalformedJSON},
		{name: "invalid utf-8", raw: []byte("{\"specversion\":\"1.0\",\"id\":\"\xff\"}"), reason: ReasonMalformedJSON},
		{name: "duplicate keys", raw: []byte(`{"specversion":"1.0","specversion":"1.0"}`), reason: ReasonMalformedJSON},
		{name: "duplicate keys in data", typ: TypeKPIMeasured, reason: ReasonMalformedJSON, raw: []byte(`{"specversion":"1.0","id":"a","source":"s","type":"cat.smartcity.kpi.measured.v1","time":"2026-11-20T11:00:00Z","municipality":"sabadell","publisher":"fcc-medi-ambient","data":{"service":"a","kpi":"b","value":1,"value":2}}`)},
		{name: "bare NaN", raw: []byte(`{"specversion":"1.0","data":{"value":NaN}}`), reason: ReasonMalformedJSON},
		{name: "trailing garbage", raw: []byte(`{"specversion":"1.0"} x`), reason: ReasonMalformedJSON},
		{name: "array", raw: []byte(`[1,2]`), reason: ReasonNotCloudEvent},
		{name: "string", raw: []byte(`"hello"`), reason: ReasonNotCloudEvent},
		{name: "no specversion", typ: TypeKPIMeasured, edit: delEnv("specversion"), reason: ReasonNotCloudEvent},
		{name: "specversion 0.3", typ: TypeKPIMeasured, edit: setEnv("specversion", "0.3"), reason: ReasonUnsupportedSpecVersion},
		{name: "specversion number", typ: TypeKPIMeasured, edit: setEnv("specversion", 1.0), reason: ReasonUnsupportedSpecVersion},
		{name: "no id", typ: TypeKPIMeasured, edit: delEnv("id"), reason: ReasonMissingField},
		{name: "null id", typ: TypeKPIMeasured, edit: setEnv("id", nil), reason: ReasonMissingField},
		{name: "no source", typ: TypeKPIMeasured, edit: delEnv("source"), reason: ReasonMissingField},
		{name: "no type", typ: TypeKPIMeasured, edit: delEnv("type"), reason: ReasonMissingField},
		{name: "no time", typ: TypeKPIMeasured, edit: delEnv("time"), reason: ReasonMissingField},
		{name: "no municipality", typ: TypeKPIMeasured, edit: delEnv("municipality"), reason: ReasonMissingField},
		{name: "no publisher", typ: TypeKPIMeasured, edit: delEnv("publisher"), reason: ReasonMissingField},
		{name: "no data", typ: TypeKPIMeasured, edit: delEnv("data"), reason: ReasonMissingField},
		{name: "unknown type", typ: TypeKPIMeasured, edit: setEnv("type", "cat.smartcity.kpi.measured.v2"), reason: ReasonUnknownType},
		{name: "type not string", typ: TypeKPIMeasured, edit: setEnv("type", 3), reason: ReasonInvalidField},
		{name: "empty id", typ: TypeKPIMeasured, edit: setEnv("id", ""), reason: ReasonInvalidField},
		{name: "id 129 chars", typ: TypeKPIMeasured, edit: setEnv("id", strings.Repeat("x", 129)), reason: ReasonInvalidField},
		{name: "id control char", typ: TypeKPIMeasured, edit: setEnv("id", "a\tb"), reason: ReasonInvalidField},
		{name: "id non-ascii", typ: TypeKPIMeasured, edit: setEnv("id", "càrrec"), reason: ReasonInvalidField},
		{name: "id number", typ: TypeKPIMeasured, edit: setEnv("id", 42), reason: ReasonInvalidField},
		{name: "empty source", typ: TypeKPIMeasured, edit: setEnv("source", ""), reason: ReasonInvalidField},
		{name: "source with space", typ: TypeKPIMeasured, edit: setEnv("source", "urn:a b"), reason: ReasonInvalidField},
		{name: "time without zone", typ: TypeKPIMeasured, edit: setEnv("time", "2026-11-20T11:00:00"), reason: ReasonInvalidField},
		{name: "time date only", typ: TypeKPIMeasured, edit: setEnv("time", "2026-11-20"), reason: ReasonInvalidField},
		{name: "time unix number", typ: TypeKPIMeasured, edit: setEnv("time", 1763636400), reason: ReasonInvalidField},
		{name: "time with space", typ: TypeKPIMeasured, edit: setEnv("time", "2026-11-20 11:00:00Z"), reason: ReasonInvalidField},
		{name: "municipality upper case", typ: TypeKPIMeasured, edit: setEnv("municipality", "Sabadell"), reason: ReasonInvalidField},
		{name: "municipality with dot", typ: TypeKPIMeasured, edit: setEnv("municipality", "saba.dell"), reason: ReasonInvalidField},
		{name: "municipality 64 chars", typ: TypeKPIMeasured, edit: setEnv("municipality", "a"+long), reason: ReasonInvalidField},
		{name: "publisher wildcard", typ: TypeKPIMeasured, edit: setEnv("publisher", "*"), reason: ReasonInvalidField},
		{name: "datacontenttype xml", typ: TypeKPIMeasured, edit: setEnv("datacontenttype", "application/xml"), reason: ReasonInvalidField},
		{name: "data array", typ: TypeKPIMeasured, edit: setEnv("data", []int{1}), reason: ReasonInvalidField},
		{name: "data string", typ: TypeKPIMeasured, edit: setEnv("data", "{}"), reason: ReasonInvalidField},
		{name: "municipality differs", typ: TypeKPIMeasured, edit: setEnv("municipality", "terrassa"), reason: ReasonSubjectMismatch},
		{name: "publisher differs", typ: TypeKPIMeasured, edit: setEnv("publisher", "other"), reason: ReasonSubjectMismatch},
		{name: "measurement on incident kind", typ: TypeKPIMeasured, edit: func(_ map[string]any, s *string) {
			*s = Subject("sabadell", "fcc-medi-ambient", KindIncident)
		}, reason: ReasonSubjectMismatch},
		{name: "unknown kind", typ: TypeKPIMeasured, edit: func(_ map[string]any, s *string) {
			*s = "smartcity.sabadell.fcc-medi-ambient.other"
		}, reason: ReasonSubjectMismatch},
		{name: "subject too short", typ: TypeKPIMeasured, edit: func(_ map[string]any, s *string) {
			*s = "smartcity.sabadell.fcc-medi-ambient"
		}, reason: ReasonSubjectMismatch},
		{name: "catalog from provider", typ: TypeServiceRegistered, edit: func(env map[string]any, s *string) {
			env["publisher"] = "fcc-medi-ambient"
			*s = Subject("sabadell", "fcc-medi-ambient", KindCatalog)
		}, reason: ReasonForbiddenPublisher},
		{name: "sla from provider", typ: TypeSLADefined, edit: func(env map[string]any, s *string) {
			env["publisher"] = "aigues"
			*s = Subject("sabadell", "aigues", KindCatalog)
		}, reason: ReasonForbiddenPublisher},
		{name: "measurement no service", typ: TypeKPIMeasured, edit: delData("service"), reason: ReasonMissingField},
		{name: "measurement no value", typ: TypeKPIMeasured, edit: delData("value"), reason: ReasonMissingField},
		{name: "measurement null value", typ: TypeKPIMeasured, edit: setData("value", nil), reason: ReasonMissingField},
		{name: "measurement value string", typ: TypeKPIMeasured, edit: setData("value", "0.9"), reason: ReasonInvalidField},
		{name: "measurement value bool", typ: TypeKPIMeasured, edit: setData("value", true), reason: ReasonInvalidField},
		{name: "measurement value NaN string", typ: TypeKPIMeasured, edit: setData("value", "NaN"), reason: ReasonNonFiniteValue},
		{name: "measurement value Infinity string", typ: TypeKPIMeasured, edit: setData("value", "-Infinity"), reason: ReasonNonFiniteValue},
		{name: "measurement value overflow", typ: TypeKPIMeasured, raw: []byte(`{"specversion":"1.0","id":"a","source":"s","type":"cat.smartcity.kpi.measured.v1","time":"2026-11-20T11:00:00Z","municipality":"sabadell","publisher":"fcc-medi-ambient","data":{"service":"a","kpi":"b","value":1e999}}`), reason: ReasonNonFiniteValue},
		{name: "kpi with dot", typ: TypeKPIMeasured, edit: setData("kpi", "a.b"), reason: ReasonInvalidField},
		{name: "service upper case", typ: TypeKPIMeasured, edit: setData("service", "Waste"), reason: ReasonInvalidField},
		{name: "service 64 chars", typ: TypeKPIMeasured, edit: setData("service", "a"+long), reason: ReasonInvalidField},
		{name: "service starts with dash", typ: TypeKPIMeasured, edit: setData("service", "-a"), reason: ReasonInvalidField},
		{name: "registered bad delivery", typ: TypeServiceRegistered, edit: setData("delivery", "outsourced"), reason: ReasonInvalidField},
		{name: "registered no area", typ: TypeServiceRegistered, edit: delData("area"), reason: ReasonMissingField},
		{name: "concession without provider", typ: TypeServiceRegistered, edit: delData("provider"), reason: ReasonMissingField},
		{name: "concession provided by council", typ: TypeServiceRegistered, edit: setData("provider", "council"), reason: ReasonInvalidField},
		{name: "concession provider with underscore", typ: TypeServiceRegistered, edit: setData("provider", "fcc_ma"), reason: ReasonInvalidField},
		{name: "own with external provider", typ: TypeServiceRegistered, edit: func(env map[string]any, _ *string) {
			data(env)["delivery"] = "own"
		}, reason: ReasonInvalidField},
		{name: "interval 59", typ: TypeServiceRegistered, edit: setData("reporting_interval_seconds", 59), reason: ReasonInvalidField},
		{name: "interval 604801", typ: TypeServiceRegistered, edit: setData("reporting_interval_seconds", 604801), reason: ReasonInvalidField},
		{name: "interval fractional", typ: TypeServiceRegistered, edit: setData("reporting_interval_seconds", 900.5), reason: ReasonInvalidField},
		{name: "interval string", typ: TypeServiceRegistered, edit: setData("reporting_interval_seconds", "900"), reason: ReasonInvalidField},
		{name: "open_data string", typ: TypeServiceRegistered, edit: setData("open_data", "yes"), reason: ReasonInvalidField},
		{name: "name number", typ: TypeServiceRegistered, edit: setData("name", 5), reason: ReasonInvalidField},
		{name: "retired no service", typ: TypeServiceRetired, edit: delData("service"), reason: ReasonMissingField},
		{name: "sla bad direction", typ: TypeSLADefined, edit: setData("direction", "up"), reason: ReasonInvalidField},
		{name: "sla objective 0", typ: TypeSLADefined, edit: setData("objective", 0), reason: ReasonInvalidField},
		{name: "sla objective above 1", typ: TypeSLADefined, edit: setData("objective", 1.0001), reason: ReasonInvalidField},
		{name: "sla objective negative", typ: TypeSLADefined, edit: setData("objective", -0.5), reason: ReasonInvalidField},
		{name: "sla target Inf string", typ: TypeSLADefined, edit: setData("target", "Inf"), reason: ReasonNonFiniteValue},
		{name: "sla objective NaN string", typ: TypeSLADefined, edit: setData("objective", "nan"), reason: ReasonNonFiniteValue},
		{name: "sla no kpi", typ: TypeSLADefined, edit: delData("kpi"), reason: ReasonMissingField},
		{name: "sla no target", typ: TypeSLADefined, edit: delData("target"), reason: ReasonMissingField},
		{name: "incident bad priority", typ: TypeIncidentOpened, edit: setData("priority", "urgent"), reason: ReasonInvalidField},
		{name: "incident target 59", typ: TypeIncidentOpened, edit: setData("resolution_target_seconds", 59), reason: ReasonInvalidField},
		{name: "incident target above a year", typ: TypeIncidentOpened, edit: setData("resolution_target_seconds", 31536001), reason: ReasonInvalidField},
		{name: "incident target Infinity string", typ: TypeIncidentOpened, edit: setData("resolution_target_seconds", "Infinity"), reason: ReasonNonFiniteValue},
		{name: "incident no incident", typ: TypeIncidentOpened, edit: delData("incident"), reason: ReasonMissingField},
		{name: "resolved bad id", typ: TypeIncidentResolved, edit: setData("incident", "inc>1"), reason: ReasonInvalidField},
		{name: "future time 5m1s", typ: TypeKPIMeasured, edit: setEnv("time", now.Add(5*time.Minute+time.Second).Format(time.RFC3339)), reason: ReasonFutureTime},
		{name: "year 9999", typ: TypeKPIMeasured, edit: setEnv("time", "9999-12-31T23:59:59Z"), reason: ReasonFutureTime},
		{name: "too late 400d+1s", typ: TypeKPIMeasured, edit: setEnv("time", now.Add(-400*24*time.Hour-time.Second).Format(time.RFC3339)), reason: ReasonTooLate},
		{name: "too large", typ: TypeKPIMeasured, edit: setData("pad", strings.Repeat("x", MaxMessageSize)), reason: ReasonTooLarge},

		// Null means unset: a null specversion is no specversion.
		{name: "specversion null", typ: TypeKPIMeasured, edit: setEnv("specversion", nil), reason: ReasonNotCloudEvent},
		{name: "null source", typ: TypeKPIMeasured, edit: setEnv("source", nil), reason: ReasonMissingField},
		{name: "null time", typ: TypeKPIMeasured, edit: setEnv("time", nil), reason: ReasonMissingField},
		{name: "null municipality", typ: TypeKPIMeasured, edit: setEnv("municipality", nil), reason: ReasonMissingField},
		{name: "null data", typ: TypeKPIMeasured, edit: setEnv("data", nil), reason: ReasonMissingField},
		{name: "datacontenttype empty", typ: TypeKPIMeasured, edit: setEnv("datacontenttype", ""), reason: ReasonInvalidField},
		{name: "datacontenttype number", typ: TypeKPIMeasured, edit: setEnv("datacontenttype", 1), reason: ReasonInvalidField},
		{name: "datacontenttype json suffix", typ: TypeKPIMeasured, edit: setEnv("datacontenttype", "application/jsonx"), reason: ReasonInvalidField},
		{name: "datacontenttype text/json", typ: TypeKPIMeasured, edit: setEnv("datacontenttype", "text/json"), reason: ReasonInvalidField},
		{name: "datacontenttype cloudevents", typ: TypeKPIMeasured, edit: setEnv("datacontenttype", "application/cloudevents+json"), reason: ReasonInvalidField},
		{name: "datacontenttype parameter without value", typ: TypeKPIMeasured, edit: setEnv("datacontenttype", "application/json; charset"), reason: ReasonInvalidField},
		{name: "datacontenttype list", typ: TypeKPIMeasured, edit: setEnv("datacontenttype", "application/json, text/plain"), reason: ReasonInvalidField},
		// Strict RFC 3339.
		{name: "time comma fraction", typ: TypeKPIMeasured, edit: setEnv("time", "2026-11-20T11:00:00,5+01:00"), reason: ReasonInvalidField},
		{name: "time offset +24:00", typ: TypeKPIMeasured, edit: setEnv("time", "2026-11-20T11:00:00+24:00"), reason: ReasonInvalidField},
		{name: "time offset +01:60", typ: TypeKPIMeasured, edit: setEnv("time", "2026-11-20T11:00:00+01:60"), reason: ReasonInvalidField},
		{name: "time offset without colon", typ: TypeKPIMeasured, edit: setEnv("time", "2026-11-20T11:00:00+0100"), reason: ReasonInvalidField},
		{name: "time offset hours only", typ: TypeKPIMeasured, edit: setEnv("time", "2026-11-20T11:00:00+01"), reason: ReasonInvalidField},
		{name: "time dot without digits", typ: TypeKPIMeasured, edit: setEnv("time", "2026-11-20T11:00:00.Z"), reason: ReasonInvalidField},
		{name: "time hour 24", typ: TypeKPIMeasured, edit: setEnv("time", "2026-11-20T24:00:00Z"), reason: ReasonInvalidField},
		{name: "time minute 60", typ: TypeKPIMeasured, edit: setEnv("time", "2026-11-20T11:60:00Z"), reason: ReasonInvalidField},
		{name: "time leap second", typ: TypeKPIMeasured, edit: setEnv("time", "2026-06-30T23:59:60Z"), reason: ReasonInvalidField},
		{name: "time month 13", typ: TypeKPIMeasured, edit: setEnv("time", "2026-13-20T11:00:00Z"), reason: ReasonInvalidField},
		{name: "time 31 November", typ: TypeKPIMeasured, edit: setEnv("time", "2026-11-31T11:00:00Z"), reason: ReasonInvalidField},
		{name: "time 29 February 2026", typ: TypeKPIMeasured, edit: setEnv("time", "2026-02-29T11:00:00Z"), reason: ReasonInvalidField},
		{name: "time one-digit hour", typ: TypeKPIMeasured, edit: setEnv("time", "2026-11-20T1:00:00Z"), reason: ReasonInvalidField},
		{name: "time signed year", typ: TypeKPIMeasured, edit: setEnv("time", "+026-11-20T11:00:00Z"), reason: ReasonInvalidField},
		{name: "time five-digit year", typ: TypeKPIMeasured, edit: setEnv("time", "02026-11-20T11:00:00Z"), reason: ReasonInvalidField},
		{name: "time trailing space", typ: TypeKPIMeasured, edit: setEnv("time", "2026-11-20T11:00:00Z "), reason: ReasonInvalidField},
		{name: "time zone name", typ: TypeKPIMeasured, edit: setEnv("time", "2026-11-20T11:00:00CET"), reason: ReasonInvalidField},
		{name: "time fraction after offset", typ: TypeKPIMeasured, edit: setEnv("time", "2026-11-20T11:00:00Z.5"), reason: ReasonInvalidField},
		// An own service's provider is council, absent or null, never "".
		{name: "own with empty provider", typ: TypeServiceRegistered, edit: func(env map[string]any, _ *string) {
			data(env)["delivery"] = "own"
			data(env)["provider"] = ""
		}, reason: ReasonInvalidField},
		{name: "concession with empty provider", typ: TypeServiceRegistered, edit: setData("provider", ""), reason: ReasonInvalidField},
		{name: "concession with null provider", typ: TypeServiceRegistered, edit: setData("provider", nil), reason: ReasonMissingField},
		// data_base64: binary data, which the contract does not take.
		{name: "data with data_base64", typ: TypeKPIMeasured, edit: setEnv("data_base64", "AAAA"), reason: ReasonInvalidField},
		{name: "data_base64 alone", typ: TypeKPIMeasured, edit: func(env map[string]any, _ *string) {
			delete(env, "data")
			env["data_base64"] = "eyJ2YWx1ZSI6MX0="
		}, reason: ReasonMissingField},
		{name: "data null with data_base64", typ: TypeKPIMeasured, edit: func(env map[string]any, _ *string) {
			env["data"] = nil
			env["data_base64"] = "eyJ2YWx1ZSI6MX0="
		}, reason: ReasonMissingField},
	}
}

func TestDecodeRejections(t *testing.T) {
	cases := rejectionCases()
	seen := map[Reason]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg, subj := c.raw, Subject("sabadell", "fcc-medi-ambient", KindMeasurement)
			if msg == nil {
				var env map[string]any
				env, subj = valid(c.typ)
				c.edit(env, &subj)
				msg = encode(t, env)
			}
			ev, rej := Decode(subj, msg, rules())
			if rej == nil {
				t.Fatalf("accepted %+v, want %s", ev, c.reason)
			}
			if rej.Reason != c.reason {
				t.Fatalf("reason %s (%s), want %s", rej.Reason, rej.Message, c.reason)
			}
			if rej.Message == "" {
				t.Fatal("empty message")
			}
			seen[c.reason] = true
		})
	}
	for _, r := range Reasons {
		if !seen[r] {
			t.Errorf("no case for reason %s", r)
		}
	}
}

type acceptCase struct {
	name string
	typ  string
	edit func(map[string]any, *string)
}

// acceptCases are messages at the edge of a rule that are accepted.
func acceptCases() []acceptCase {
	long := strings.Repeat("a", 62)
	return []acceptCase{
		{"time exactly 5m ahead", TypeKPIMeasured, setEnv("time", now.Add(5*time.Minute).Format(time.RFC3339))},
		{"time exactly 400d old", TypeKPIMeasured, setEnv("time", now.Add(-400*24*time.Hour).Format(time.RFC3339))},
		{"time with fraction and offset", TypeKPIMeasured, setEnv("time", "2026-11-20T11:59:59.123456+02:00")},
		{"time with lower-case t and z", TypeKPIMeasured, setEnv("time", "2026-11-20t11:59:59z")},
		{"id 128 chars", TypeKPIMeasured, setEnv("id", strings.Repeat("x", 128))},
		{"id 1 char with space", TypeKPIMeasured, setEnv("id", "a b")},
		{"id printable punctuation", TypeKPIMeasured, setEnv("id", "~!@#$%^&*()")},
		{"service 63 chars", TypeKPIMeasured, setData("service", "a"+long)},
		{"kpi with underscore", TypeKPIMeasured, setData("kpi", "a_b-c")},
		{"value zero", TypeKPIMeasured, setData("value", 0)},
		{"value huge finite", TypeKPIMeasured, setData("value", 1.7976931348623157e308)},
		{"unknown extra attribute", TypeKPIMeasured, setEnv("traceparent", "00-abc")},
		{"unknown data field", TypeKPIMeasured, setData("comment", "ok")},
		{"datacontenttype json", TypeKPIMeasured, setEnv("datacontenttype", "application/json")},
		{"interval 60", TypeServiceRegistered, setData("reporting_interval_seconds", 60)},
		{"interval 604800", TypeServiceRegistered, setData("reporting_interval_seconds", 604800)},
		{"interval as 900.0", TypeServiceRegistered, setData("reporting_interval_seconds", 900.0)},
		{"own with council provider", TypeServiceRegistered, func(env map[string]any, _ *string) {
			data(env)["delivery"] = "own"
			data(env)["provider"] = "council"
		}},
		{"objective exactly 1", TypeSLADefined, setData("objective", 1)},
		{"target negative", TypeSLADefined, setData("target", -3)},
		{"incident target 60", TypeIncidentOpened, setData("resolution_target_seconds", 60)},
		{"incident target a year", TypeIncidentOpened, setData("resolution_target_seconds", 31536000)},
		{"measurement from council", TypeKPIMeasured, func(env map[string]any, s *string) {
			env["publisher"] = Council
			*s = Subject("sabadell", Council, KindMeasurement)
		}},
		{"datacontenttype null", TypeKPIMeasured, setEnv("datacontenttype", nil)},
		{"datacontenttype with charset", TypeKPIMeasured, setEnv("datacontenttype", "application/json; charset=utf-8")},
		{"datacontenttype upper case, no space", TypeKPIMeasured, setEnv("datacontenttype", "Application/JSON;charset=UTF-8")},
		{"datacontenttype quoted parameter", TypeKPIMeasured, setEnv("datacontenttype", `application/json; charset="utf-8"`)},
		{"data_base64 null", TypeKPIMeasured, setEnv("data_base64", nil)},
		{"own with null provider", TypeServiceRegistered, func(env map[string]any, _ *string) {
			data(env)["delivery"] = "own"
			data(env)["provider"] = nil
		}},
		{"time nanoseconds", TypeKPIMeasured, setEnv("time", "2026-11-20T11:59:59.123456789+02:00")},
		{"time more than nanoseconds", TypeKPIMeasured, setEnv("time", "2026-11-20T11:59:59.1234567891234+02:00")},
		{"time offset -00:00", TypeKPIMeasured, setEnv("time", "2026-11-20T11:00:00-00:00")},
		{"time offset +23:59", TypeKPIMeasured, setEnv("time", "2026-11-21T11:00:00+23:59")},
		{"time offset -23:59", TypeKPIMeasured, setEnv("time", "2026-11-19T12:00:00-23:59")},
	}
}

func TestDecodeBoundaries(t *testing.T) {
	for _, c := range acceptCases() {
		t.Run(c.name, func(t *testing.T) {
			env, subj := valid(c.typ)
			c.edit(env, &subj)
			if _, rej := Decode(subj, encode(t, env), rules()); rej != nil {
				t.Fatalf("rejected: %v", rej)
			}
		})
	}
}

func TestDecodeSizeLimit(t *testing.T) {
	env, subj := valid(TypeKPIMeasured)
	base := encode(t, env)
	// Pad with white space inside the object to reach exactly the limit.
	exact := append([]byte{}, base[:len(base)-1]...)
	exact = append(exact, []byte(strings.Repeat(" ", MaxMessageSize-len(base)))...)
	exact = append(exact, '}')
	if len(exact) != MaxMessageSize {
		t.Fatalf("built %d bytes", len(exact))
	}
	if _, rej := Decode(subj, exact, rules()); rej != nil {
		t.Fatalf("64 KiB exactly rejected: %v", rej)
	}
	over := append(exact[:len(exact)-1:len(exact)-1], ' ', '}')
	if _, rej := Decode(subj, over, rules()); rej == nil || rej.Reason != ReasonTooLarge {
		t.Fatalf("64 KiB + 1 not too_large: %v", rej)
	}
}

func TestDecodeMaxLateness(t *testing.T) {
	env, subj := valid(TypeKPIMeasured)
	env["time"] = now.Add(-2 * time.Hour).Format(time.RFC3339)
	r := Rules{Now: now, MaxLateness: time.Hour}
	if _, rej := Decode(subj, encode(t, env), r); rej == nil || rej.Reason != ReasonTooLate {
		t.Fatalf("want too_late with 1h lateness, got %v", rej)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, typ := range Types {
		env, subj := valid(typ)
		ev, rej := Decode(subj, encode(t, env), rules())
		if rej != nil {
			t.Fatal(rej)
		}
		b, err := Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		again, rej := Decode(subj, b, rules())
		if rej != nil {
			t.Fatalf("%s: re-decoding %s: %v", typ, b, rej)
		}
		if again.Time != ev.Time && !again.Time.Equal(ev.Time) {
			t.Fatalf("time changed")
		}
		if a, b := encode(t, again.Data), encode(t, ev.Data); string(a) != string(b) {
			t.Fatalf("%s: data changed: %s vs %s", typ, a, b)
		}
	}
}

func TestParseSubject(t *testing.T) {
	p, err := ParseSubject("smartcity.sant-cugat-del-valles.council.catalog")
	if err != nil || p.Municipality != "sant-cugat-del-valles" || p.Publisher != "council" || p.Kind != KindCatalog {
		t.Fatalf("%+v %v", p, err)
	}
	for _, s := range []string{"", "smartcity", "other.a.b.catalog", "smartcity.A.b.catalog", "smartcity.a.b_c.catalog", "smartcity.a.b.c.d", "smartcity.a.b.*"} {
		if _, err := ParseSubject(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
