// Package api serves the evaluator's read-only JSON API from the latest
// snapshot; ?at= evaluates on demand, a bounded number at a time.
package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/apiv1"
	"github.com/assoliment/assoliment/services/evaluator/internal/engine"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
)

// Evaluator is what the API needs of the engine.
type Evaluator interface {
	Latest() *engine.Snapshot
	EvaluateOne(ctx context.Context, at time.Time, municipality string) (*maturity.Assessment, bool, error)
}

// Options bound the on-demand evaluations.
type Options struct {
	// MaxOnDemand is how many ?at= evaluations may run at once; a request
	// beyond it gets 429 at once. At least 1.
	MaxOnDemand int
	// Now is the clock that bounds ?at= and reports (time.Now when nil).
	Now func() time.Time
	// Reports builds the monthly SLA reports, which take the same slots
	// as ?at=; without it their path is not served.
	Reports Reporter
}

// RetryAfter is what a 429 answer asks the client to wait: about the time
// of one on-demand evaluation.
const RetryAfter = 5 * time.Second

// OnDemandTimeout bounds one ?at= evaluation.
const OnDemandTimeout = 60 * time.Second

// Routes registers the API on mux, with /healthz (the process runs) and
// /readyz (a periodic evaluation has completed).
func Routes(mux *http.ServeMux, ev Evaluator, o Options, log *slog.Logger) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	slots := make(chan struct{}, max(o.MaxOnDemand, 1))
	mux.HandleFunc("GET "+apiv1.MunicipalitiesPath, func(w http.ResponseWriter, r *http.Request) {
		s := ev.Latest()
		if s == nil {
			writeError(w, http.StatusServiceUnavailable, "no evaluation has completed yet; try again in a few seconds")
			return
		}
		out := apiv1.List{EvaluatedAt: s.At, Municipalities: []apiv1.Summary{}}
		for _, m := range s.Names() {
			a := &s.Results[m].Assessment
			out.Municipalities = append(out.Municipalities, apiv1.Summary{Municipality: m, Level: a.Level, LevelName: a.LevelName, EvaluatedAt: s.At})
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET "+apiv1.MunicipalitiesPath+"/{municipality}/assessment", func(w http.ResponseWriter, r *http.Request) {
		m := r.PathValue("municipality")
		if !contract.ValidSlug(m) {
			writeError(w, http.StatusBadRequest, "municipality must match ^[a-z0-9][a-z0-9-]{0,62}$")
			return
		}
		if q := r.URL.Query(); q.Has("at") {
			at, err := time.Parse(time.RFC3339Nano, q.Get("at"))
			if err != nil {
				writeError(w, http.StatusBadRequest, "at must be an RFC 3339 timestamp such as 2026-11-20T12:00:00Z")
				return
			}
			latest := now().Add(apiv1.MaxAhead)
			if at.Before(apiv1.EarliestAt) || at.After(latest) {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("at must be between %s and %s (one day after the evaluator's clock)",
					apiv1.EarliestAt.Format(time.RFC3339), latest.UTC().Truncate(time.Second).Format(time.RFC3339)))
				return
			}
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			default:
				w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfter/time.Second)))
				writeError(w, http.StatusTooManyRequests, fmt.Sprintf("%d on-demand evaluations are running already; try again later", cap(slots)))
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), OnDemandTimeout)
			defer cancel()
			a, ok, err := ev.EvaluateOne(ctx, at.UTC(), m)
			if err != nil {
				log.Error("on-demand evaluation", "municipality", m, "at", at, "err", err)
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
	if o.Reports != nil {
		mux.Handle("GET "+apiv1.MunicipalitiesPath+"/{municipality}/reports/{month}", reportHandler(o.Reports, slots, now, log))
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint; see "+apiv1.MunicipalitiesPath)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ev.Latest() == nil {
			http.Error(w, "not ready: no evaluation has completed yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
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
	b, _ := json.Marshal(apiv1.Error{Error: msg})
	_, _ = w.Write(append(b, '\n'))
}
