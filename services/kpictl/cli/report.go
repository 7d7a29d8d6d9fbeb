package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v3"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/apiv1"
	"github.com/assoliment/assoliment/services/kpictl/report"
	"github.com/assoliment/assoliment/services/platform/cliflags"
)

// Formats of kpictl report: text tables, or what the evaluator serves.
const formatText = "text"

var reportMedia = map[string]string{
	formatText:       apiv1.MediaJSON,
	apiv1.FormatJSON: apiv1.MediaJSON,
	apiv1.FormatCSV:  apiv1.MediaCSV,
	apiv1.FormatHTML: apiv1.MediaHTML,
}

func reportCommand(e Env) *cli.Command {
	var (
		base, format, output string
		asJSON               bool
	)
	return &cli.Command{
		Name:      "report",
		Usage:     "get a municipality's monthly SLA report",
		ArgsUsage: "MUNICIPALITY YYYY-MM",
		Description: `Fetches the SLA report of a municipality for a calendar month (in the
evaluator's report time zone, Europe/Madrid by default) from the evaluator:
every SLA of every provider with its samples, compliance, objective, result
and breach days. --format text (the default) prints tables; json, csv and
html write the evaluator's answer as it is (html is a printable page with a
chart per provider); --json is --format json. --output writes to a file
instead of standard output. Exit status 1 for an unknown municipality, a
month the evaluator refuses (before 2000-01 or after the current month) or
an unreachable evaluator.

Examples:
  kpictl report sabadell 2026-10
  kpictl report sabadell 2026-10 --format csv --output sabadell-2026-10.csv
  kpictl report granollers 2026-10 --format html --output granollers-2026-10.html
  EVALUATOR_URL=http://evaluator:8080 kpictl report vic 2026-09 --json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "evaluator-url", Value: "http://127.0.0.1:8080", ValidateDefaults: true,
				Sources: cliflags.Env(e.Getenv, "EVALUATOR_URL"), Validator: cliflags.Into(&base, evaluatorURL),
				Usage: "`URL` of the evaluator API"},
			&cli.StringFlag{Name: "format", Value: formatText, ValidateDefaults: true,
				Validator: cliflags.Into(&format, cliflags.OneOf(formatText, apiv1.FormatJSON, apiv1.FormatCSV, apiv1.FormatHTML)),
				Usage:     "`FORMAT` of the result: text, json, csv or html"},
			&cli.StringFlag{Name: "output", Destination: &output, Usage: "write the result to `FILE` instead of standard output"},
			jsonFlag(&asJSON),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 2 {
				return usagef(cmd, "report needs MUNICIPALITY and YYYY-MM arguments, got %q", cmd.Args().Slice())
			}
			municipality, month := cmd.Args().Get(0), cmd.Args().Get(1)
			if !contract.ValidSlug(municipality) {
				return usagef(cmd, "municipality %q: must be a municipality id such as sabadell or sant-cugat-del-valles", municipality)
			}
			if !report.ValidMonth(month) {
				return usagef(cmd, "month %q: must be a month written YYYY-MM, such as 2026-10", month)
			}
			if asJSON {
				if cmd.IsSet("format") && format != apiv1.FormatJSON {
					return usagef(cmd, "--json and --format %s ask for two formats; use one", format)
				}
				format = apiv1.FormatJSON
			}
			if cmd.IsSet("output") && output == "" {
				return usagef(cmd, "--output needs a FILE name")
			}
			body, err := report.Fetch(ctx, e.HTTP, base, municipality, month, reportMedia[format])
			if err != nil {
				return failed(err)
			}
			var out bytes.Buffer
			switch format {
			case formatText:
				r, err := report.Decode(body)
				if err != nil {
					return failed(err)
				}
				if err := report.Render(&out, r); err != nil {
					return failed(err)
				}
			case apiv1.FormatJSON:
				if json.Indent(&out, bytes.TrimSpace(body), "", "  ") != nil {
					out.Reset()
					out.Write(bytes.TrimSpace(body))
				}
				out.WriteString("\n")
			default:
				out.Write(body)
			}
			if output == "" {
				if _, err := e.Stdout.Write(out.Bytes()); err != nil {
					return failed(fmt.Errorf("write report: %w", err))
				}
				return nil
			}
			if err := os.WriteFile(output, out.Bytes(), 0o644); err != nil {
				return failed(fmt.Errorf("write report: %w", err))
			}
			return nil
		},
	}
}
