package contract

import (
	"fmt"
	"mime"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// AttributeHeaderPrefix starts the name of every header that carries a
// CloudEvents attribute in binary content mode (ce-id, ce-time,
// ce-municipality…), in the NATS and HTTP protocol bindings alike. Header
// names are compared without regard to case.
const AttributeHeaderPrefix = "ce-"

// DecodeMessage validates one message in either CloudEvents content mode,
// with its headers (a nats.Header or an http.Header), and returns the event
// or the rejection. The mode is chosen as the NATS and HTTP bindings say:
//
//   - a Content-Type of application/cloudevents (any suffix, any case):
//     structured mode, the body is the whole event and any ce- header is
//     ignored, as the bindings allow the attributes to be repeated there;
//   - otherwise, a ce-specversion header: binary mode, the attributes are
//     the ce- headers and the body is data;
//   - otherwise structured mode, exactly as Decode.
//
// Binary mode follows the rules, reasons and order of checks of Decode.
// Header values are read as the bindings define them (an optional
// double-quoted string, then percent-decoding), and each is the attribute's
// string value. datacontenttype is the ce-datacontenttype header (NATS
// binding) or, when that is absent, the Content-Type header (HTTP binding).
// The size limit counts the body and the names and values of the ce- and
// Content-Type headers.
func DecodeMessage(subject string, header map[string][]string, body []byte, rules Rules) (*Event, *Rejection) {
	var attrs, contentTypes []string // header names, in a stable order
	binary := false
	for name, values := range header {
		switch {
		case len(values) == 0: // a name without a value is no header
		case hasPrefixFold(name, AttributeHeaderPrefix):
			attrs = append(attrs, name)
			binary = binary || strings.EqualFold(name, AttributeHeaderPrefix+"specversion")
		case strings.EqualFold(name, "Content-Type"):
			contentTypes = append(contentTypes, name)
		}
	}
	for _, name := range contentTypes {
		for _, v := range header[name] {
			if structuredMediaType(v) {
				binary = false
			}
		}
	}
	if !binary {
		return Decode(subject, body, rules)
	}
	size := len(body)
	for _, name := range slices.Concat(attrs, contentTypes) {
		for _, v := range header[name] {
			size += len(name) + len(v)
		}
	}
	if size > MaxMessageSize {
		return nil, reject(ReasonTooLarge, "message is %d bytes (body and ce- and Content-Type headers); the limit is %d",
			size, MaxMessageSize)
	}
	slices.Sort(attrs)
	slices.Sort(contentTypes)
	env := make(object, 0, len(attrs)+2)
	from := make(map[string]string, len(attrs)) // attribute -> header name
	for _, name := range attrs {
		attr := strings.ToLower(name[len(AttributeHeaderPrefix):])
		if attr == "data" || attr == "data_base64" {
			continue // not attributes: in binary mode the body is the data
		}
		if n := len(header[name]); n > 1 {
			return nil, reject(ReasonMalformedJSON, "header %s is given %d times; each attribute is given once", name, n)
		}
		if prev, ok := from[attr]; ok {
			return nil, reject(ReasonMalformedJSON, "headers %s and %s both carry attribute %q; each attribute is given once",
				prev, name, attr)
		}
		v, err := headerValue(header[name][0])
		if err != nil {
			return nil, reject(ReasonMalformedJSON, "header %s: %v", name, err)
		}
		from[attr] = name
		env = append(env, objectMember{attr, jsonString(v)}) // once each: from says
	}
	if len(contentTypes) > 1 || (len(contentTypes) == 1 && len(header[contentTypes[0]]) != 1) {
		return nil, reject(ReasonMalformedJSON, "header Content-Type is given more than once")
	}
	if len(contentTypes) == 1 {
		v := strings.Trim(header[contentTypes[0]][0], " \t")
		if !utf8.ValidString(v) {
			return nil, reject(ReasonMalformedJSON, "header Content-Type is not UTF-8")
		}
		// With both headers, both must name JSON: the one checked is
		// Content-Type unless ce-datacontenttype is already wrong.
		if ce, ok := env.get("datacontenttype"); !ok || validDataContentType(ce) {
			env = env.set("datacontenttype", jsonString(v))
		}
	}
	if len(body) > 0 {
		var data jsontext.Value
		if err := json.Unmarshal(body, &data); err != nil {
			return nil, reject(ReasonMalformedJSON, "message body (the data, in binary mode): %v", cleanErr(err))
		}
		env = env.set("data", data)
	}
	return validate(subject, env, true, rules)
}

// structuredMediaType reports whether a Content-Type value announces the
// structured content mode: the media type application/cloudevents, with or
// without a format suffix such as +json, in any case.
func structuredMediaType(v string) bool {
	mt, _, _ := mime.ParseMediaType(v)
	if mt == "" {
		mt = strings.ToLower(strings.TrimSpace(v))
	}
	return strings.HasPrefix(mt, "application/cloudevents")
}

// headerValue decodes a binary-mode header value as the CloudEvents NATS and
// HTTP bindings define it: surrounding white space dropped, a double-quoted
// string unquoted (RFC 7230, section 3.2.6), then one round of
// percent-decoding; the result must be UTF-8.
func headerValue(v string) (string, error) {
	v = strings.Trim(v, " \t")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		var b strings.Builder
		for i := 1; i < len(v)-1; i++ {
			c := v[i]
			if c == '\\' {
				i++
				if i == len(v)-1 {
					return "", fmt.Errorf("quoted string ends with a lone backslash")
				}
				c = v[i]
			} else if c == '"' {
				return "", fmt.Errorf("unescaped double quote inside a quoted string")
			}
			b.WriteByte(c)
		}
		v = b.String()
	}
	if strings.IndexByte(v, '%') >= 0 {
		d, err := url.PathUnescape(v)
		if err != nil {
			return "", fmt.Errorf("invalid percent-encoding (a %% is written %%25): %w", err)
		}
		v = d
	}
	if !utf8.ValidString(v) {
		return "", fmt.Errorf("value is not UTF-8 once percent-decoded")
	}
	return v, nil
}

func validDataContentType(v jsontext.Value) bool {
	s, ok := str(v)
	return ok && jsonMediaType(s)
}

func jsonString(s string) jsontext.Value {
	b, err := json.Marshal(s)
	if err != nil {
		// Only invalid UTF-8 fails, and headerValue has refused it.
		panic(fmt.Sprintf("contract: encode header value: %v", err))
	}
	return b
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
