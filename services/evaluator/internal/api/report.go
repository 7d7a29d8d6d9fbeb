package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/elnormous/contenttype"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/apiv1"
	"github.com/assoliment/assoliment/services/evaluator/internal/report"
)

// Reporter builds monthly SLA reports (report.Builder).
type Reporter interface {
	// Location is the time zone of the months.
	Location() *time.Location
	// Build reports on municipality for month, cut at now when the month
	// has not ended; found is false when the municipality is not known.
	Build(ctx context.Context, municipality string, month report.Month, now time.Time) (r *apiv1.Report, found bool, err error)
}

// The report's formats, in the order Accept picks among equals (JSON when
// anything goes).
var (
	reportMedia  = []contenttype.MediaType{contenttype.NewMediaType(apiv1.MediaJSON), contenttype.NewMediaType(apiv1.MediaHTML), contenttype.NewMediaType(apiv1.MediaCSV)}
	mediaFormats = map[string]string{apiv1.MediaJSON: apiv1.FormatJSON, apiv1.MediaHTML: apiv1.FormatHTML, apiv1.MediaCSV: apiv1.FormatCSV}
)

// reportHandler serves GET /api/v1/municipalities/{municipality}/reports/{month}.
// The request is checked before it takes one of the on-demand slots it
// shares with ?at=, and errors are JSON whatever the format asked for.
func reportHandler(rep Reporter, slots chan struct{}, now func() time.Time, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Accept")
		m := r.PathValue("municipality")
		if !contract.ValidSlug(m) {
			writeError(w, http.StatusBadRequest, "municipality must match ^[a-z0-9][a-z0-9-]{0,62}$")
			return
		}
		month, err := report.ParseMonth(r.PathValue("month"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		loc, clock := rep.Location(), now()
		if current := report.MonthOf(clock, loc); month.Before(report.Earliest) || current.Before(month) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("month must be between %s and %s (the current month in %s)", report.Earliest, current, loc))
			return
		}
		format, code, msg := reportFormat(r)
		if code != 0 {
			writeError(w, code, msg)
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
		rp, ok, err := rep.Build(ctx, m, month, clock)
		if err != nil {
			log.Error("monthly report", "municipality", m, "month", month.String(), "err", err)
			writeError(w, http.StatusServiceUnavailable, "report failed; see the evaluator's log")
			return
		}
		if !ok {
			writeError(w, http.StatusNotFound, "unknown municipality "+m)
			return
		}
		switch format {
		case apiv1.FormatJSON:
			writeJSON(w, http.StatusOK, rp)
		case apiv1.FormatCSV:
			var b bytes.Buffer
			if err := report.WriteCSV(&b, rp); err != nil {
				writeError(w, http.StatusInternalServerError, "writing the report failed")
				return
			}
			h := w.Header()
			h.Set("Content-Type", apiv1.MediaCSV+"; charset=utf-8; header=present")
			h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="sla-report-%s-%s.csv"`, m, month))
			h.Set("X-Content-Type-Options", "nosniff")
			_, _ = w.Write(b.Bytes())
		case apiv1.FormatHTML:
			var b bytes.Buffer
			if err := report.WriteHTML(&b, rp); err != nil {
				log.Error("monthly report page", "municipality", m, "month", month.String(), "err", err)
				writeError(w, http.StatusInternalServerError, "writing the report failed")
				return
			}
			h := w.Header()
			h.Set("Content-Type", apiv1.MediaHTML+"; charset=utf-8")
			// The page loads nothing and runs nothing: only its own
			// inline style applies.
			h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
			h.Set("X-Content-Type-Options", "nosniff")
			_, _ = w.Write(b.Bytes())
		}
	})
}

// reportFormat is the format of ?format= when given, else the best of
// Accept (JSON when Accept is absent or empty); code is not 0 when
// neither can be served.
func reportFormat(r *http.Request) (format string, code int, msg string) {
	if q := r.URL.Query(); q.Has("format") {
		switch f := q.Get("format"); f {
		case apiv1.FormatJSON, apiv1.FormatCSV, apiv1.FormatHTML:
			return f, 0, ""
		}
		return "", http.StatusBadRequest, "format must be json, csv or html"
	}
	accept := r.Header.Get("Accept")
	if strings.TrimSpace(accept) == "" {
		return apiv1.FormatJSON, 0, ""
	}
	mt, _, err := contenttype.GetAcceptableMediaTypeFromHeader(accept, reportMedia)
	switch {
	case errors.Is(err, contenttype.ErrNoAcceptableTypeFound):
		return "", http.StatusNotAcceptable, "the report is served as application/json, text/csv or text/html (or ?format=json, csv or html)"
	case err != nil:
		return "", http.StatusBadRequest, "the Accept header is malformed; use ?format=json, csv or html"
	}
	return mediaFormats[mt.MIME()], 0, ""
}
