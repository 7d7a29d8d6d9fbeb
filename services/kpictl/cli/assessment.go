package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/kpictl/assessment"
	"github.com/assoliment/assoliment/services/platform/cliflags"
)

func assessmentCommand(e Env) *cli.Command {
	var (
		base   string
		at     time.Time
		asJSON bool
	)
	return &cli.Command{
		Name:      "assessment",
		Usage:     "show a municipality's maturity assessment",
		ArgsUsage: "MUNICIPALITY",
		Description: `Fetches a municipality's maturity assessment from the evaluator and prints
every criterion (level, pass or fail, value, threshold, explanation) and
what is missing for the next level; --json prints the evaluator's answer as
it is. Exit status 1 for an unknown municipality or an unreachable
evaluator.

Examples:
  kpictl assessment sabadell
  kpictl assessment granollers --at 2026-10-01T00:00:00Z
  EVALUATOR_URL=http://evaluator:8080 kpictl assessment vic --json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "evaluator-url", Value: "http://127.0.0.1:8080", ValidateDefaults: true,
				Sources: cliflags.Env(e.Getenv, "EVALUATOR_URL"), Validator: cliflags.Into(&base, evaluatorURL),
				Usage: "`URL` of the evaluator API"},
			&cli.StringFlag{Name: "at", Validator: cliflags.Into(&at, cliflags.Time),
				Usage: "evaluate at `TIME` (RFC 3339) instead of the latest evaluation"},
			jsonFlag(&asJSON),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 1 {
				return usagef(cmd, "assessment needs one MUNICIPALITY argument, got %q", cmd.Args().Slice())
			}
			municipality := cmd.Args().First()
			if !contract.ValidSlug(municipality) {
				return usagef(cmd, "municipality %q: must be a municipality id such as sabadell or sant-cugat-del-valles", municipality)
			}
			a, body, err := assessment.Fetch(ctx, e.HTTP, base, municipality, at)
			if err != nil {
				return failed(err)
			}
			if asJSON {
				var buf bytes.Buffer
				if json.Indent(&buf, body, "", "  ") != nil {
					buf.Reset()
					buf.Write(body)
				}
				fmt.Fprintln(e.Stdout, strings.TrimSpace(buf.String()))
				return nil
			}
			if err := assessment.Render(e.Stdout, a); err != nil {
				return failed(err)
			}
			return nil
		},
	}
}

// evaluatorURL reads an http(s) base URL, without a trailing slash.
func evaluatorURL(s string) (string, error) {
	p, err := url.Parse(s)
	if err != nil || p.Host == "" || (p.Scheme != "http" && p.Scheme != "https") {
		return "", errors.New("must be an http(s) URL such as http://evaluator:8080")
	}
	return strings.TrimRight(s, "/"), nil
}
