package contract

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var update = flag.Bool("update", false, "rewrite the JSON Schemas in schemas/ and docs/schemas/ from the contract")

// docsSchemas is the copy of the schemas shipped with the documentation.
const docsSchemas = "../../docs/schemas"

// The JSON Schemas are written from the contract's own constants below, so
// that a pattern, a range or a list of values has one source. Regenerate
// with: go test -run TestSchemasUpToDate -update (in services/contract).

// Patterns that only the schemas need; each mirrors a check in validate.go
// and is tested against it by TestSchemasAgreeWithDecode.
const (
	// id: 1-128 printable ASCII characters (printableASCII).
	idPattern = `^[ -~]{1,128}$`
	// source: printable ASCII without space and "<>\^`{|} (validURIRef).
	sourcePattern = "^[!#-;=?-\\[\\]_a-z~]+$"
	// time: RFC 3339 (parseRFC3339) but for the number of days in the
	// month, which format "date-time" checks.
	timePattern = `^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$`
	// datacontenttype: application/json in any case, with parameters
	// (jsonMediaType).
	mediaToken  = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
	jsonPattern = `^[ \t]*[Aa][Pp][Pp][Ll][Ii][Cc][Aa][Tt][Ii][Oo][Nn]/[Jj][Ss][Oo][Nn][ \t]*` +
		`(;[ \t]*` + mediaToken + `[ \t]*=[ \t]*(` + mediaToken + `|"([^"\\]|\\.)*")[ \t]*)*(;[ \t]*)?$`
)

// obj is a JSON object that keeps the order of its members.
type obj []member

type member struct {
	key   string
	value any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshal(m.key)
		if err != nil {
			return nil, err
		}
		v, err := marshal(m.value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func stringMatching(pattern, description string) obj {
	return obj{{"description", description}, {"type", "string"}, {"pattern", pattern}}
}

func tokenField(description string) obj {
	return stringMatching(tokenRE.String(), description)
}

func optional(typ, description string) obj {
	return obj{{"description", description + " Null means absent."}, {"type", []string{typ, "null"}}}
}

func wholeNumber(lo, hi int64, description string) obj {
	return obj{{"description", description}, {"type", "integer"}, {"minimum", lo}, {"maximum", hi}}
}

// dataSchemas are the schemas of the data of each type, and what each is.
func dataSchemas() map[string]struct {
	about string
	data  obj
} {
	service := tokenField("The service, a token of the municipality's catalogue.")
	object := func(required []string, properties obj, more ...member) obj {
		return append(obj{{"type", "object"}, {"required", required}, {"properties", properties}}, more...)
	}
	type schema = struct {
		about string
		data  obj
	}
	return map[string]schema{
		TypeServiceRegistered: {"adds a service to the municipality's catalogue, or replaces its description", object(
			[]string{"service", "area", "delivery"},
			obj{
				{"service", service},
				{"name", optional("string", "Display name; the service id when absent or empty.")},
				{"area", tokenField("The service area (àrea de servei), e.g. environment, mobility, lighting.")},
				{"delivery", obj{{"description", "concession: contracted to an external provider; own: provided by the council."},
					{"enum", []string{DeliveryConcession, DeliveryOwn}}}},
				{"reporting_interval_seconds", obj{{"description", "How often the service is expected to report; 3600 when absent. Null means absent."},
					{"type", []string{"integer", "null"}}, {"minimum", 60}, {"maximum", 604800}}},
				{"open_data", optional("boolean", "Whether the service's KPI data is published as open data; false when absent.")},
				{"provider", optional("string", "The provider's publisher id: required for a concession, council or absent for an own service.")},
			},
			member{"allOf", []obj{
				{{"if", obj{{"required", []string{"delivery"}}, {"properties", obj{{"delivery", obj{{"const", DeliveryConcession}}}}}}},
					{"then", obj{{"required", []string{"provider"}}, {"properties", obj{{"provider", obj{
						{"type", "string"}, {"pattern", slugRE.String()}, {"not", obj{{"const", Council}}}}}}}}}},
				{{"if", obj{{"required", []string{"delivery"}}, {"properties", obj{{"delivery", obj{{"const", DeliveryOwn}}}}}}},
					{"then", obj{{"properties", obj{{"provider", obj{{"enum", []any{Council, nil}}}}}}}}},
			}},
		)},
		TypeServiceRetired: {"removes a service from the catalogue from the event time on",
			object([]string{"service"}, obj{{"service", service}})},
		TypeSLADefined: {"establishes or replaces the service-level agreement of one KPI of a service", object(
			[]string{"service", "kpi", "direction", "target", "objective"},
			obj{
				{"service", service},
				{"kpi", tokenField("The KPI.")},
				{"name", optional("string", "Display name.")},
				{"unit", optional("string", "Unit, informational.")},
				{"direction", obj{{"description", "higher_is_better: a measurement meets the target when value >= target; lower_is_better: when value <= target."},
					{"enum", []string{HigherIsBetter, LowerIsBetter}}}},
				{"target", obj{{"description", "Finite number."}, {"type", "number"}}},
				{"objective", obj{{"description", "The share of measurements that must meet the target."},
					{"type", "number"}, {"exclusiveMinimum", 0}, {"maximum", 1}}},
			})},
		TypeKPIMeasured: {"one measurement of a KPI", object(
			[]string{"service", "kpi", "value"},
			obj{
				{"service", service},
				{"kpi", tokenField("The KPI.")},
				{"value", obj{{"description", "Finite number: never a string, NaN or infinity."}, {"type", "number"}}},
			})},
		TypeIncidentOpened: {"opens an incident on a service at the event time", object(
			[]string{"service", "incident", "priority", "resolution_target_seconds"},
			obj{
				{"service", service},
				{"incident", tokenField("The incident's id within the municipality.")},
				{"priority", obj{{"enum", Priorities}}},
				{"resolution_target_seconds", wholeNumber(60, 31536000, "Time allowed to resolve it, at most a year.")},
			})},
		TypeIncidentResolved: {"resolves an incident at the event time", object(
			[]string{"service", "incident"},
			obj{{"service", service}, {"incident", tokenField("The incident's id within the municipality.")}})},
	}
}

// generateSchemas renders the schema of every inbound type, by file name.
func generateSchemas(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for typ, d := range dataSchemas() {
		kind, _ := KindOf(typ)
		publisher := stringMatching(slugRE.String(), "Extension attribute: who sends the event; must equal the subject's <publisher>.")
		if kind == KindCatalog {
			publisher = obj{{"description", "Extension attribute: catalogue events come only from the council."}, {"const", Council}}
		}
		s := obj{
			{"$schema", "https://json-schema.org/draft/2020-12/schema"},
			{"title", typ},
			{"description", fmt.Sprintf("Assoliment event contract v1, %s: %s. A CloudEvent in structured JSON mode "+
				"on smartcity.<municipality>.<publisher>.%s; in binary mode the body is the data alone, #/$defs/data. "+
				"Rules that no schema can express (the subject, the time window, the 64 KiB size, duplicate JSON members, "+
				"finite numbers beyond the range of a 64-bit float) are in docs/events.md.", typ, d.about, kind)},
			{"type", "object"},
			{"required", []string{"specversion", "id", "source", "type", "time", "municipality", "publisher", "data"}},
			{"properties", obj{
				{"specversion", obj{{"const", SpecVersion}}},
				{"id", stringMatching(idPattern, "1 to 128 printable ASCII characters; unique per publisher and municipality.")},
				{"source", stringMatching(sourcePattern, "URI-reference, informational.")},
				{"type", obj{{"const", typ}}},
				{"time", obj{{"description", "RFC 3339 with an offset: when the fact happened."},
					{"type", "string"}, {"format", "date-time"}, {"pattern", timePattern}}},
				{"municipality", stringMatching(slugRE.String(), "Extension attribute: the municipality id; must equal the subject's <municipality>.")},
				{"publisher", publisher},
				{"datacontenttype", obj{{"description", "application/json, parameters allowed. Null means absent."},
					{"type", []string{"string", "null"}}, {"pattern", jsonPattern}}},
				{"data_base64", obj{{"description", "Binary data is not accepted: absent or null."}, {"type", "null"}}},
				{"data", obj{{"$ref", "#/$defs/data"}}},
			}},
			{"$defs", obj{{"data", d.data}}},
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		out[typ+".json"] = b.Bytes()
	}
	return out
}

// TestSchemasUpToDate checks that the embedded schemas and their copies in
// docs/schemas are what the contract generates, and rewrites both with
// -update.
func TestSchemasUpToDate(t *testing.T) {
	want := generateSchemas(t)
	for _, dir := range []string{"schemas", docsSchemas} {
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			old, _ := filepath.Glob(filepath.Join(dir, "*.json"))
			for _, f := range old {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
			for name, b := range want {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		got := map[string][]byte{}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got[filepath.Base(f)] = b
		}
		for name, b := range want {
			if !bytes.Equal(got[name], b) {
				t.Errorf("%s is not what the contract generates; regenerate the schemas with "+
					"`go test -run TestSchemasUpToDate -update` in services/contract", filepath.Join(dir, name))
			}
		}
		for name := range got {
			if want[name] == nil {
				t.Errorf("%s is not a schema of an inbound type; regenerate the schemas with "+
					"`go test -run TestSchemasUpToDate -update` in services/contract", filepath.Join(dir, name))
			}
		}
	}
	if *update {
		return // the embedded copies are those this test binary was built with
	}
	embedded := Schemas()
	if len(embedded) != len(Types) {
		t.Fatalf("%d schemas embedded, want %d", len(embedded), len(Types))
	}
	for _, typ := range Types {
		if !bytes.Equal(embedded[typ], want[typ+".json"]) {
			t.Errorf("embedded schema of %s differs from schemas/%s.json", typ, typ)
		}
	}
}

// compileSchemas compiles every schema, with format assertions on (the
// time's date-time format checks the days of each month).
func compileSchemas(t testing.TB) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	out := map[string]*jsonschema.Schema{}
	for typ, b := range Schemas() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		loc := "file:///schemas/" + typ + ".json"
		if err := c.AddResource(loc, doc); err != nil {
			t.Fatal(err)
		}
		if out[typ], err = c.Compile(loc); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
	}
	return out
}

// schemaBlind are the reasons for which a schema, which sees one JSON
// document and nothing else, cannot refuse a message: it does not see the
// subject, the clock or the size, and a JSON parser that keeps one of two
// duplicate members hides them from it.
var schemaBlind = map[Reason]bool{
	ReasonTooLarge: true, ReasonMalformedJSON: true, ReasonSubjectMismatch: true,
	ReasonFutureTime: true, ReasonTooLate: true,
}

// schemaBlindCases are further rejections a schema cannot see: a number
// too large for a 64-bit float is still a JSON number.
var schemaBlindCases = []string{"measurement value overflow"}

// TestSchemasAgreeWithDecode validates the corpus of this package's tables
// (every rejection and every boundary accepted) and every example of
// docs/events.md with both the schema of the event's type and Decode: they
// agree on valid and invalid, except for the rejections no schema can see,
// which the schema accepts.
func TestSchemasAgreeWithDecode(t *testing.T) {
	schemas := compileSchemas(t)
	type sample struct {
		name, subject string
		msg           []byte
	}
	var corpus []sample
	for _, typ := range Types {
		env, subj := valid(typ)
		corpus = append(corpus, sample{"valid " + typ, subj, encode(t, env)})
	}
	for _, c := range rejectionCases() {
		msg, subj := c.raw, Subject("sabadell", "fcc-medi-ambient", KindMeasurement)
		if msg == nil {
			var env map[string]any
			env, subj = valid(c.typ)
			c.edit(env, &subj)
			msg = encode(t, env)
		}
		corpus = append(corpus, sample{c.name, subj, msg})
	}
	for _, c := range acceptCases() {
		env, subj := valid(c.typ)
		c.edit(env, &subj)
		corpus = append(corpus, sample{c.name, subj, encode(t, env)})
	}
	examples := docExamples(t)
	if len(examples) < 7 {
		t.Fatalf("found %d structured examples in docs/events.md", len(examples))
	}
	for _, e := range examples {
		corpus = append(corpus, sample{"docs/events.md: " + e.id, e.subject, e.body})
	}
	r := Rules{Now: docsNow}
	checked := 0
	for _, s := range corpus {
		_, rej := Decode(s.subject, s.msg, r)
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(s.msg))
		if err != nil {
			if rej == nil || rej.Reason != ReasonMalformedJSON {
				t.Errorf("%s: not JSON to the schema validator (%v), but Decode says %v", s.name, err, rej)
			}
			continue
		}
		m, _ := doc.(map[string]any)
		typ, _ := m["type"].(string)
		sch := schemas[typ]
		if sch == nil {
			if rej == nil {
				t.Errorf("%s: accepted with type %q, which has no schema", s.name, typ)
			}
			continue
		}
		checked++
		serr := sch.Validate(doc)
		switch {
		case rej == nil && serr != nil:
			t.Errorf("%s: accepted by Decode, refused by the schema: %v", s.name, serr)
		case rej != nil && (schemaBlind[rej.Reason] || slices.Contains(schemaBlindCases, s.name)):
			if serr != nil {
				t.Errorf("%s: %s is beyond a schema, yet the schema refuses it: %v", s.name, rej.Reason, serr)
			}
		case rej != nil && serr == nil:
			t.Errorf("%s: refused by Decode (%v), accepted by the schema", s.name, rej)
		}
	}
	if checked < 150 {
		t.Fatalf("only %d messages checked against a schema", checked)
	}
}

// TestSchemasData checks that each schema's #/$defs/data judges a binary
// mode body as DecodeMessage does.
func TestSchemasData(t *testing.T) {
	c := jsonschema.NewCompiler()
	for _, typ := range Types {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schemas()[typ]))
		if err != nil {
			t.Fatal(err)
		}
		loc := "file:///schemas/" + typ + ".json"
		if err := c.AddResource(loc, doc); err != nil {
			t.Fatal(err)
		}
		data, err := c.Compile(loc + "#/$defs/data")
		if err != nil {
			t.Fatal(err)
		}
		env, subj := valid(typ)
		h, body, _ := toBinary(t, env)
		for _, b := range []struct {
			body []byte
			ok   bool
		}{{body, true}, {[]byte(`{}`), false}, {[]byte(`[]`), false}} {
			v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b.body))
			_, rej := DecodeMessage(subj, h, b.body, rules())
			if (data.Validate(v) == nil) != b.ok || (rej == nil) != b.ok {
				t.Errorf("%s: body %s: schema %v, DecodeMessage %v, want ok=%v", typ, b.body, data.Validate(v), rej, b.ok)
			}
		}
	}
}

// docExample is a structured-mode example of docs/events.md with the
// subject it is shown on.
type docExample struct {
	id, subject string
	body        []byte
}

// docsNow is the platform clock the examples of docs/events.md assume.
var docsNow = mustTime("2026-11-20T10:02:00Z")

func mustTime(s string) time.Time {
	t0, ok := parseRFC3339(s)
	if !ok {
		panic(s)
	}
	return t0
}

// docExamples reads every ```json block of docs/events.md that holds a
// whole event, with the subject named by the closest "On `smartcity…`"
// line above it.
func docExamples(t testing.TB) []docExample {
	t.Helper()
	b, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []docExample
	subject := ""
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.HasPrefix(line, "On `smartcity.") {
			subject = strings.Trim(strings.TrimPrefix(line, "On "), "`:")
		}
		if line != "```json" {
			continue
		}
		var block []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			block = append(block, lines[i])
		}
		body := []byte(strings.Join(block, "\n"))
		var head struct {
			ID          string `json:"id"`
			SpecVersion string `json:"specversion"`
		}
		if json.Unmarshal(body, &head) != nil || head.SpecVersion == "" {
			continue
		}
		if subject == "" {
			t.Fatalf("docs/events.md: example %s has no subject above it", head.ID)
		}
		out = append(out, docExample{head.ID, subject, body})
	}
	return out
}

// TestDocsExamples decodes every example event of docs/events.md: each
// structured one is accepted, and each binary-mode one (NATS and HTTP) is
// accepted as the same event as the structured example with its id.
func TestDocsExamples(t *testing.T) {
	byID := map[string]*Event{}
	for _, e := range docExamples(t) {
		ev, rej := Decode(e.subject, e.body, Rules{Now: docsNow})
		if rej != nil {
			t.Errorf("docs/events.md example %s on %s: %v", e.id, e.subject, rej)
			continue
		}
		byID[e.id] = ev
	}
	b, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	binary := 0
	for _, block := range fencedBlocks(string(b)) {
		var subject string
		var header map[string][]string
		var body []byte
		switch {
		case block.info == "http":
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(strings.ReplaceAll(block.text, "\n", "\r\n"))))
			if err != nil {
				t.Fatalf("docs/events.md: HTTP example: %v", err)
			}
			if body, err = io.ReadAll(req.Body); err != nil {
				t.Fatal(err)
			}
			body = bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))
			header = req.Header
			kind, _ := KindOf(req.Header.Get("ce-type"))
			subject = Subject(req.Header.Get("ce-municipality"), req.Header.Get("ce-publisher"), kind)
		case block.info == "text" && strings.HasPrefix(block.text, "Subject: "):
			head, rest, _ := strings.Cut(block.text, "\n\n")
			subject = strings.TrimPrefix(head, "Subject: ")
			lines, data, _ := strings.Cut(rest, "\n\n")
			header = map[string][]string{}
			for _, l := range strings.Split(lines, "\n") {
				k, v, ok := strings.Cut(l, ": ")
				if !ok {
					t.Fatalf("docs/events.md: NATS example header line %q", l)
				}
				header[k] = append(header[k], v)
			}
			body = []byte(strings.TrimSuffix(data, "\n"))
		default:
			continue
		}
		binary++
		ev, rej := DecodeMessage(subject, header, body, Rules{Now: docsNow})
		if rej != nil {
			t.Errorf("docs/events.md binary example on %s: %v", subject, rej)
			continue
		}
		want := byID[ev.ID]
		if want == nil {
			t.Errorf("docs/events.md binary example %s has no structured example with its id", ev.ID)
			continue
		}
		ev.DataContentType = want.DataContentType
		if !sameEvent(ev, want) {
			t.Errorf("docs/events.md binary example %s: %+v, the structured example is %+v", ev.ID, ev, want)
		}
	}
	if binary < 2 {
		t.Fatalf("found %d binary-mode examples in docs/events.md, want the NATS and the HTTP one", binary)
	}
}

type fenced struct{ info, text string }

// fencedBlocks returns the fenced code blocks of a Markdown text.
func fencedBlocks(md string) []fenced {
	var out []fenced
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		info, ok := strings.CutPrefix(lines[i], "```")
		if !ok || info == "" {
			continue
		}
		var block []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			block = append(block, lines[i])
		}
		out = append(out, fenced{info, strings.Join(block, "\n") + "\n"})
	}
	return out
}
