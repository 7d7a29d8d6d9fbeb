// Package api serves the evaluator's read-only JSON API from the latest
// snapshot; ?at= evaluates on demand.
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/internal/engine"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
)

// Evaluator is what the API needs of the engine.
type Evaluator interface {
	Latest() *engine.Snapshot
	EvaluateOne(ctx context.Context, at time.Time, municipality string) (*maturity.Assessment, bool, error)
}

// Summary is one municipality in the list.
type Summary struct {
	Municipality string    `json:"municipality"`
	Level        int       `json:"level"`
	LevelName    string    `json:"level_name"`
	EvaluatedAt  time.Time `json:"evaluated_at"`
}

// List is the answer of GET /api/v1/municipalities.
type List struct {
	EvaluatedAt    time.Time `json:"evaluated_at"`
	Municipalities []Summary `json:"municipalities"`
}

// Routes registers the API on mux.
func Routes(mux *http.ServeMux, ev Evaluator, log *slog.Logger) {
	mux.HandleFunc("GET /api/v1/municipalities", func(w http.ResponseWriter, r *http.Request) {
		s := ev.Latest()
		if s == nil {
			writeError(w, http.StatusServiceUnavailable, "no evaluation has completed yet; try again in a few seconds")
			return
		}
		out := List{EvaluatedAt: s.At, Municipalities: []Summary{}}
		for _, m := range s.Names() {
			a := &s.Results[m].Assessment
			out.Municipalities = append(out.Municipalities, Summary{m, a.Level, a.LevelName, s.At})
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /api/v1/municipalities/{municipality}/assessment", func(w http.ResponseWriter, r *http.Request) {
		m := r.PathValue("municipality")
		if !contract.ValidSlug(m) {
			writeError(w, http.StatusBadRequest, "municipality must match ^[a-z0-9][a-z0-9-]{0,62}$")
			return
		}
		if q := r.URL.Query().Get("at"); q != "" || r.URL.Query().Has("at") {
			at, err := time.Parse(time.RFC3339Nano, q)
			if err != nil {
				writeError(w, http.StatusBadRequest, "at must be an RFC 3339 timestamp such as 2026-11-20T12:00:00Z")
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
			defer cancel()
			a, ok, err := ev.EvaluateOne(ctx, at.UTC(), m)
			if err != nil {
				log.Error("on-demand evaluation", "municipality", m, "at", q, "err", err)
				writeError(w, http.StatusServiceUnavailable, "evaluation failed; see the evaluator's log")
				return
			}
			if !ok {
				writeError(w, http.StatusNotFound, "unknown municipality "+m)
				return
			}
			writeJSON(w, http.StatusOK, a)
			return
		}
		s := ev.Latest()
		if s == nil {
			writeError(w, http.StatusServiceUnavailable, "no evaluation has completed yet; try again in a few seconds")
			return
		}
		res, ok := s.Results[m]
		if !ok {
			writeError(w, http.StatusNotFound, "unknown municipality "+m)
			return
		}
		writeJSON(w, http.StatusOK, &res.Assessment)
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint; see /api/v1/municipalities")
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding the answer failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"error": msg})
	_, _ = w.Write(append(b, '\n'))
}
