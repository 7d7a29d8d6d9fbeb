// Package api is the gateway's HTTP interface for publishers: the
// CloudEvents HTTP binding on POST /api/v1/events (structured, batch and
// binary content modes), judged by the contract's own validation, limited
// per token, and answered only once JetStream has stored each accepted
// event.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/gateway/internal/keyring"
	"github.com/assoliment/assoliment/services/gateway/internal/metrics"
)

// Media types of the CloudEvents HTTP binding's structured and batch modes.
const (
	StructuredType = "application/cloudevents+json"
	BatchType      = "application/cloudevents-batch+json"
)

// Reasons of whole-request answers, besides the contract's rejection
// reasons (which answer 400, and too_large, which answers 413).
const (
	ReasonUnauthorized     = "unauthorized"
	ReasonForbidden        = "forbidden"
	ReasonUnsupportedMedia = "unsupported_media_type"
	ReasonTooManyEvents    = "too_many_events"
	ReasonNotBatch         = "not_a_batch"
	ReasonRateLimited      = "rate_limited"
	ReasonUnavailable      = "unavailable"
	ReasonNotFound         = "not_found"
	ReasonMethodNotAllowed = "method_not_allowed"
)

// unavailableRetry is the Retry-After of a 503: NATS reconnects every half
// second, so a few seconds is enough to try again.
const unavailableRetry = 5 * time.Second

// Publisher stores messages in JetStream and reports how many failed.
type Publisher interface {
	Publish(ctx context.Context, msgs []*nats.Msg) (failed int, err error)
}

// Config is what the handler needs.
type Config struct {
	Keyring        *keyring.Keyring
	Publisher      Publisher
	Metrics        *metrics.Metrics
	Connected      func() bool // NATS is connected
	MaxBatchEvents int
	MaxBatchBytes  int
	MaxLateness    time.Duration
	Log            *slog.Logger
}

// Handler serves POST /api/v1/events.
type Handler struct {
	c Config

	mu     sync.Mutex
	bodies int // bytes reserved by the requests whose bodies are held
}

// New returns the events handler.
func New(c Config) *Handler { return &Handler{c: c} }

// BodyBudget is how many bytes of request bodies the gateway holds at
// once, as a multiple of the largest batch: sixteen largest batches. A
// request that would pass it is answered 503 with Retry-After before its
// body is read, so parallel requests cannot grow the gateway's memory
// without bound, whatever their tokens.
const BodyBudget = 16

// budget is the bytes of request bodies held at once at the most.
func (h *Handler) budget() int { return BodyBudget * max(h.c.MaxBatchBytes, contract.MaxMessageSize) }

// reserve books n bytes of the body budget; false when they are not free.
func (h *Handler) reserve(n int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bodies+n > h.budget() {
		return false
	}
	h.bodies += n
	h.c.Metrics.BodyBytes.Set(float64(h.bodies))
	return true
}

func (h *Handler) release(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bodies -= n
	h.c.Metrics.BodyBytes.Set(float64(h.bodies))
}

// Problem is the body of every error answer.
type Problem struct {
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

// Rejected is one refused event of a batch.
type Rejected struct {
	Index  int    `json:"index"`
	ID     string `json:"id"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

// BatchAnswer is the body of a batch's 200.
type BatchAnswer struct {
	Accepted int        `json:"accepted"`
	Rejected []Rejected `json:"rejected"`
}

// Accepted is the body of a single event's 202.
type Accepted struct {
	ID      string `json:"id"`
	Subject string `json:"subject"`
}

// exchange is one request being answered.
type exchange struct {
	w         http.ResponseWriter
	r         *http.Request
	publisher string // metric label
	mode      string
	code      int
}

func (x *exchange) json(code int, v any) {
	x.code = code
	x.w.Header().Set("Content-Type", "application/json")
	x.w.WriteHeader(code)
	enc := json.NewEncoder(x.w)
	enc.SetEscapeHTML(false) // details quote "<token>", read by people
	_ = enc.Encode(v)
}

func (x *exchange) problem(code int, reason, format string, args ...any) {
	x.json(code, Problem{Reason: reason, Detail: fmt.Sprintf(format, args...)})
}

func (x *exchange) retryAfter(d time.Duration) {
	x.w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
}

// ServeHTTP answers one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	x := &exchange{w: w, r: r, publisher: metrics.Unknown, mode: "none"}
	defer func() {
		h.c.Metrics.Requests.WithLabelValues(x.publisher, strconv.Itoa(x.code)).Inc()
		h.c.Metrics.Duration.WithLabelValues(x.mode).Observe(time.Since(start).Seconds())
	}()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		x.problem(http.StatusMethodNotAllowed, ReasonMethodNotAllowed, "%s /api/v1/events: only POST is allowed", r.Method)
		return
	}
	who, ok := h.authenticate(x)
	if !ok {
		return
	}
	x.publisher = who.Publisher
	if x.mode = modeOf(r.Header); x.mode == "none" {
		x.problem(http.StatusUnsupportedMediaType, ReasonUnsupportedMedia,
			"Content-Type %q with no ce-specversion header: send %s (one event), %s (a JSON array of events), or the event's attributes as ce- headers with its data as the body",
			r.Header.Get("Content-Type"), StructuredType, BatchType)
		return
	}
	if !h.c.Connected() {
		h.unavailable(x, 0, "the event broker is not reachable; nothing was stored")
		return
	}
	now := time.Now()
	if tokens := who.Limiter.TokensAt(now); tokens < 1 {
		// Refused before reading the body: a batch's events are not counted.
		events := 1
		if x.mode == "batch" {
			events = 0
		}
		h.rateLimited(x, who, events, time.Duration((1-tokens)/float64(who.Limiter.Limit())*float64(time.Second)))
		return
	}
	limit := contract.MaxMessageSize
	if x.mode == "batch" {
		limit = h.c.MaxBatchBytes
	}
	reserved := limit
	if x.r.ContentLength >= 0 && x.r.ContentLength < int64(limit) {
		reserved = int(x.r.ContentLength) + 1
	}
	if !h.reserve(reserved) {
		h.unavailable(x, 0, "the gateway holds as many request bodies as it may (%d bytes); try again shortly", h.budget())
		return
	}
	defer h.release(reserved)
	body, ok := readBody(x, limit)
	if !ok {
		return
	}
	now = time.Now()
	if x.mode == "batch" {
		h.batch(x, who, body, now)
		return
	}
	h.single(x, who, body, now)
}

// authenticate reads the bearer token and answers 401 when it is missing
// or unknown.
func (h *Handler) authenticate(x *exchange) (*keyring.Principal, bool) {
	auth := x.r.Header.Get("Authorization")
	scheme, token, found := strings.Cut(auth, " ")
	token = strings.TrimSpace(token)
	if auth == "" || !found || !strings.EqualFold(scheme, "Bearer") || token == "" {
		x.w.Header().Set("WWW-Authenticate", `Bearer realm="assoliment"`)
		x.problem(http.StatusUnauthorized, ReasonUnauthorized, "send the publisher's token as \"Authorization: Bearer <token>\"")
		return nil, false
	}
	who, ok := h.c.Keyring.Authenticate(token)
	if !ok {
		x.w.Header().Set("WWW-Authenticate", `Bearer realm="assoliment", error="invalid_token"`)
		x.problem(http.StatusUnauthorized, ReasonUnauthorized, "the token is not valid (unknown, revoked or mistyped)")
		return nil, false
	}
	return who, true
}

// modeOf is the request's content mode by the CloudEvents HTTP binding:
// structured or batch by media type, binary when a ce-specversion header
// is present, else none.
func modeOf(h http.Header) string {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	switch mt {
	case StructuredType:
		return "structured"
	case BatchType:
		return "batch"
	}
	for name := range h {
		if strings.EqualFold(name, contract.AttributeHeaderPrefix+"specversion") {
			return "binary"
		}
	}
	return "none"
}

// readBody reads at most limit bytes; a larger body is answered 413.
func readBody(x *exchange, limit int) ([]byte, bool) {
	tooLarge := func(n string) ([]byte, bool) {
		x.problem(http.StatusRequestEntityTooLarge, string(contract.ReasonTooLarge), "request body is %s bytes; the limit for this content mode is %d", n, limit)
		return nil, false
	}
	if x.r.ContentLength > int64(limit) {
		return tooLarge(strconv.FormatInt(x.r.ContentLength, 10))
	}
	size := 4096 // unknown length: grow as it comes
	if x.r.ContentLength >= 0 {
		size = int(x.r.ContentLength) + 1
	}
	buf := make([]byte, 0, size)
	b, err := readAll(http.MaxBytesReader(x.w, x.r.Body, int64(limit)), buf)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return tooLarge("more than " + strconv.Itoa(limit))
	case err != nil:
		x.problem(http.StatusBadRequest, string(contract.ReasonMalformedJSON), "request body could not be read: %v", err)
		return nil, false
	}
	return b, true
}

// readAll is io.ReadAll into buf, sized from Content-Length.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// admit takes n events from the token's rate; when they are not available
// now it answers 429 and returns false.
func (h *Handler) admit(x *exchange, who *keyring.Principal, n int, now time.Time) bool {
	res := who.Limiter.ReserveN(now, n)
	if !res.OK() { // more than the burst: never admitted
		h.rateLimited(x, who, n, time.Duration(float64(n)/float64(who.Limiter.Limit())*float64(time.Second)))
		return false
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		h.rateLimited(x, who, n, d)
		return false
	}
	return true
}

func (h *Handler) rateLimited(x *exchange, who *keyring.Principal, events int, wait time.Duration) {
	h.count(x, metrics.RateLimited, events)
	wait = max(wait, time.Second).Round(time.Second)
	x.retryAfter(wait)
	x.problem(http.StatusTooManyRequests, ReasonRateLimited, "the token's limit of %g events per second (bursts of %d) is reached; retry after %s",
		float64(who.Limiter.Limit()), who.Limiter.Burst(), wait)
}

func (h *Handler) unavailable(x *exchange, events int, format string, args ...any) {
	h.count(x, metrics.Unavailable, events)
	x.retryAfter(unavailableRetry)
	x.problem(http.StatusServiceUnavailable, ReasonUnavailable, format, args...)
}

func (h *Handler) count(x *exchange, outcome string, n int) {
	if n > 0 {
		h.c.Metrics.Events.WithLabelValues(x.publisher, outcome).Add(float64(n))
	}
}

func (h *Handler) reject(x *exchange, rej *contract.Rejection) {
	h.count(x, metrics.Rejected, 1)
	h.c.Metrics.Rejections.WithLabelValues(x.publisher, string(rej.Reason)).Inc()
}

// single answers a structured or binary event.
func (h *Handler) single(x *exchange, who *keyring.Principal, body []byte, now time.Time) {
	if !h.admit(x, who, 1, now) {
		return
	}
	rules := contract.Rules{Now: now, MaxLateness: h.c.MaxLateness}
	var ev *contract.Event
	var rej *contract.Rejection
	var msg *nats.Msg
	if x.mode == "structured" {
		ev, rej = contract.Decode(subjectOf(body), body, rules)
		if rej == nil {
			msg = structuredMsg(ev, body)
		}
	} else {
		ev, rej = contract.DecodeMessage(binarySubject(x.r.Header), x.r.Header, body, rules)
		if rej == nil {
			msg = binaryMsg(ev, x.r.Header, body)
		}
	}
	if rej != nil {
		h.reject(x, rej)
		code := http.StatusBadRequest
		if rej.Reason == contract.ReasonTooLarge {
			code = http.StatusRequestEntityTooLarge
		}
		x.problem(code, string(rej.Reason), "%s", rej.Message)
		return
	}
	if detail, ok := allowed(who, ev); !ok {
		h.count(x, metrics.Forbidden, 1)
		x.problem(http.StatusForbidden, ReasonForbidden, "%s", detail)
		return
	}
	if !h.publish(x, []*nats.Msg{msg}) {
		return
	}
	h.count(x, metrics.Accepted, 1)
	x.json(http.StatusAccepted, Accepted{ID: ev.ID, Subject: msg.Subject})
}

// batch answers a JSON array of structured events: each is judged alone,
// the valid ones are stored and the others listed.
func (h *Handler) batch(x *exchange, who *keyring.Principal, body []byte, now time.Time) {
	items, problem := splitBatch(body, h.c.MaxBatchEvents)
	if problem != nil {
		code := http.StatusBadRequest
		if problem.Reason == ReasonTooManyEvents {
			code = http.StatusRequestEntityTooLarge
		}
		x.problem(code, problem.Reason, "%s", problem.Detail)
		return
	}
	if !h.admit(x, who, len(items), now) {
		return
	}
	rules := contract.Rules{Now: now, MaxLateness: h.c.MaxLateness}
	answer := BatchAnswer{Rejected: []Rejected{}}
	msgs := make([]*nats.Msg, 0, len(items))
	forbidden := 0
	for i, raw := range items {
		ev, rej := contract.Decode(subjectOf(raw), raw, rules)
		if rej != nil {
			h.reject(x, rej)
			answer.Rejected = append(answer.Rejected, Rejected{Index: i, ID: idOf(raw), Reason: string(rej.Reason), Detail: rej.Message})
			continue
		}
		if detail, ok := allowed(who, ev); !ok {
			forbidden++
			answer.Rejected = append(answer.Rejected, Rejected{Index: i, ID: ev.ID, Reason: ReasonForbidden, Detail: detail})
			continue
		}
		msgs = append(msgs, structuredMsg(ev, raw))
	}
	h.count(x, metrics.Forbidden, forbidden)
	if len(msgs) > 0 && !h.publish(x, msgs) {
		return
	}
	h.count(x, metrics.Accepted, len(msgs))
	answer.Accepted = len(msgs)
	x.json(http.StatusOK, answer)
}

// publish stores msgs and answers 503 when any was not acknowledged.
func (h *Handler) publish(x *exchange, msgs []*nats.Msg) bool {
	start := time.Now()
	failed, err := h.c.Publisher.Publish(x.r.Context(), msgs)
	h.c.Metrics.AckWait.Observe(time.Since(start).Seconds())
	if err == nil {
		return true
	}
	h.c.Log.Warn("events not acknowledged by JetStream", "publisher", x.publisher, "failed", failed, "of", len(msgs), "err", err)
	if len(msgs) == 1 {
		h.unavailable(x, 1, "the event was not stored (%v); send it again with the same id", err)
	} else {
		h.count(x, metrics.Accepted, len(msgs)-failed)
		h.unavailable(x, failed, "%d of the batch's %d valid events were not stored (%v); send the whole batch again: events already stored are recognised by their id and counted once",
			failed, len(msgs), err)
	}
	return false
}

// allowed checks the event against the token's scope.
func allowed(who *keyring.Principal, ev *contract.Event) (string, bool) {
	if who.Allows(ev.Publisher, ev.Municipality) {
		return "", true
	}
	if ev.Publisher != who.Publisher {
		return fmt.Sprintf("the token is for publisher %q; this event names publisher %q", who.Publisher, ev.Publisher), false
	}
	return fmt.Sprintf("the token is for municipalities %s; this event is about %q",
		strings.Join(who.Municipalities, ", "), ev.Municipality), false
}

// structuredMsg is the NATS message of a structured event: its bytes as
// received.
func structuredMsg(ev *contract.Event, body []byte) *nats.Msg {
	m := &nats.Msg{Subject: ev.Subject(), Data: body, Header: nats.Header{}}
	m.Header[nats.MsgIdHdr] = []string{ev.ID}
	m.Header["Content-Type"] = []string{StructuredType}
	return m
}

// binaryMsg is the NATS binary-mode message of a binary event: its ce-
// headers and Content-Type as received, and its body.
func binaryMsg(ev *contract.Event, h http.Header, body []byte) *nats.Msg {
	m := &nats.Msg{Subject: ev.Subject(), Data: body, Header: nats.Header{}}
	for name, values := range h {
		if hasPrefixFold(name, contract.AttributeHeaderPrefix) {
			m.Header[strings.ToLower(name)] = values
		}
	}
	if ct := h.Values("Content-Type"); len(ct) > 0 {
		m.Header["Content-Type"] = ct
	}
	m.Header[nats.MsgIdHdr] = []string{ev.ID}
	return m
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
