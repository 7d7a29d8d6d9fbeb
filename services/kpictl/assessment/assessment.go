// Package assessment fetches a municipality's maturity assessment from the
// evaluator API, decoded into the API's own types (evaluator/apiv1), and
// renders it as a table.
package assessment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/assoliment/assoliment/services/evaluator/apiv1"
)

// ErrNotFound is returned for an unknown municipality.
var ErrNotFound = errors.New("not found")

// Fetch gets the assessment of municipality from the evaluator at base
// (e.g. http://127.0.0.1:8080), at instant at when it is not zero. It
// returns the parsed assessment and the raw JSON body.
func Fetch(ctx context.Context, client *http.Client, base, municipality string, at time.Time) (*apiv1.Assessment, []byte, error) {
	u := strings.TrimRight(base, "/") + apiv1.AssessmentPath(municipality)
	if !at.IsZero() {
		u += "?at=" + url.QueryEscape(at.Format(time.RFC3339))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("assessment request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("evaluator at %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("read assessment: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e apiv1.Error
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if resp.StatusCode == http.StatusNotFound {
			return nil, body, fmt.Errorf("municipality %q: %w: %s", municipality, ErrNotFound, msg)
		}
		return nil, body, fmt.Errorf("evaluator answered %s: %s", resp.Status, msg)
	}
	var a apiv1.Assessment
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, body, fmt.Errorf("evaluator answer is not an assessment: %w", err)
	}
	return &a, body, nil
}

// Levels names the levels 1-5, for the "missing" heading.
var levelNames = map[int]string{1: "puntual", 2: "collaboracio", 3: "estrategia", 4: "gestionat", 5: "optimitzat"}

// Render writes the assessment as a readable table.
func Render(w io.Writer, a *apiv1.Assessment) error {
	name := a.LevelName
	if name == "" && a.Level == 0 {
		name = "sense dades"
	}
	fmt.Fprintf(w, "%s: level %d %s at %s (window %s)\n\n", a.Municipality, a.Level, name, a.At.Format(time.RFC3339), days(a.WindowSeconds))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LEVEL\tCRITERION\tRESULT\tVALUE\tTHRESHOLD\tEXPLANATION")
	for _, c := range a.Criteria {
		fmt.Fprintf(tw, "%d %s\t%s\t%s\t%s\t%s\t%s\n", c.Level, c.LevelName, c.ID, result(c.Passed), value(c.Value), threshold(c), c.Explanation)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	next := a.Level + 1
	switch {
	case a.Level >= 5:
		fmt.Fprintln(w, "\nHighest level reached: nothing is missing.")
	case len(a.Missing) == 0:
		fmt.Fprintf(w, "\nMissing for level %d (%s): nothing reported.\n", next, levelNames[next])
	default:
		fmt.Fprintf(w, "\nMissing for level %d (%s):\n", next, levelNames[next])
		for _, c := range a.Missing {
			fmt.Fprintf(w, "  - %s (level %d): %s, needs %s. %s\n", c.ID, c.Level, value(c.Value), threshold(c), c.Explanation)
		}
	}
	return nil
}

func result(ok bool) string {
	if ok {
		return "pass"
	}
	return "FAIL"
}

func value(v *float64) string {
	if v == nil {
		return "no data"
	}
	return strconv.FormatFloat(*v, 'g', 4, 64)
}

func threshold(c apiv1.Criterion) string {
	if c.ThresholdText != "" {
		return c.ThresholdText
	}
	return ">= " + strconv.FormatFloat(c.Threshold, 'g', -1, 64)
}

func days(sec int64) string {
	if sec > 0 && sec%86400 == 0 {
		return strconv.FormatInt(sec/86400, 10) + "d"
	}
	return (time.Duration(sec) * time.Second).String()
}
