package cli

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/assoliment/assoliment/services/gateway/tokens"
)

func tokenCommand(e Env) *cli.Command {
	return &cli.Command{
		Name:     "token",
		Usage:    "manage the HTTP gateway's tokens",
		Commands: []*cli.Command{tokenNewCommand(e)},
		Action:   needsCommand,
	}
}

func tokenNewCommand(e Env) *cli.Command {
	var (
		publisher      string
		municipalities []string
		asJSON         bool
	)
	return &cli.Command{
		Name:  "new",
		Usage: "make a token for the HTTP gateway, and its entry for the tokens file",
		Description: `Prints a fresh random token (256 bits), once: hand it to the publisher over
a channel you trust. Then the entry to add under "tokens:" in the
gateway's tokens file (GATEWAY_TOKENS_FILE), which holds only the token's
SHA-256; the gateway reads the file again on its own. A council's token
(--publisher council) is for exactly one municipality. docs/gateway.md
explains tokens: adding, rotating, revoking.

Examples:
  kpictl token new --publisher fcc-medi-ambient --municipality sabadell --municipality terrassa
  kpictl token new --publisher council --municipality sabadell --json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "publisher", Destination: &publisher, Required: true,
				Usage: "`ID` of the publisher every event sent with the token must name (council for a council)"},
			&cli.StringSliceFlag{Name: "municipality", Destination: &municipalities, Required: true,
				Usage: "`ID` of a municipality the token's events may be about (repeat, or comma-separated)"},
			jsonFlag(&asJSON),
		},
		Action: func(_ context.Context, cmd *cli.Command) error {
			if cmd.Args().Present() {
				return usagef(cmd, "token new takes no arguments, got %q", cmd.Args().Slice())
			}
			token, entry, err := tokens.New(publisher, municipalities)
			if err != nil {
				return usagef(cmd, "--publisher/--municipality: %v", err)
			}
			if asJSON {
				return printJSON(e.Stdout, struct {
					Token          string   `json:"token"`
					Publisher      string   `json:"publisher"`
					Municipalities []string `json:"municipalities"`
					SHA256         string   `json:"sha256"`
					Entry          string   `json:"entry"` // YAML, to paste under "tokens:"
				}{token, entry.Publisher, entry.Municipalities, entry.SHA256, entry.YAML()})
			}
			fmt.Fprintf(e.Stdout, "Token (shown only this once; give it to %s over a channel you trust):\n\n  %s\n\n", entry.Publisher, token)
			fmt.Fprintf(e.Stdout, "Entry to add under \"tokens:\" in the gateway's tokens file:\n\n%s", entry.YAML())
			return nil
		},
	}
}
