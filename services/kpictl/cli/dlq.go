package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/urfave/cli/v3"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/kpictl/dlq"
	"github.com/assoliment/assoliment/services/platform/cliflags"
	"github.com/assoliment/assoliment/services/platform/config"
	"github.com/assoliment/assoliment/services/platform/natsauth"
	"github.com/assoliment/assoliment/services/platform/natsconn"
)

// dlqFlags choose dead letters; list and replay share them.
type dlqFlags struct {
	conn   cliflags.NATS
	stream string
	reason string
	limit  int
	seqs   []uint64
	json   bool
}

func (d *dlqFlags) flags(e Env, defaultLimit string) []cli.Flag {
	reasons := make([]string, len(contract.Reasons))
	for i, r := range contract.Reasons {
		reasons[i] = string(r)
	}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "reason", Validator: cliflags.Into(&d.reason, func(s string) (string, error) {
			if s == "" {
				return "", nil
			}
			return cliflags.OneOf(reasons...)(s)
		}), Usage: "only dead letters rejected for `REASON`, one of the contract's reasons (too_late, future_time…)"},
		&cli.StringFlag{Name: "limit", Value: defaultLimit, ValidateDefaults: true,
			Validator: cliflags.Into(&d.limit, cliflags.IntIn(0, 1<<30)),
			Usage:     "at most `N` dead letters, 0 for all"},
		&cli.Uint64SliceFlag{Name: "seq", Destination: &d.seqs, Validator: func(seqs []uint64) error {
			for _, s := range seqs {
				if s == 0 {
					return errors.New("must be stream sequence numbers from 1 on, repeated or comma-separated")
				}
			}
			return nil
		}, Usage: "only the dead letter with this `SEQ` in the dead-letter stream (repeat, or 3,5,8)"},
		&cli.StringFlag{Name: "stream", Value: contract.DeadLetterStream, ValidateDefaults: true, HideDefault: true,
			Validator: cliflags.Into(&d.stream, cliflags.Checked(config.Identifier)),
			Usage:     "`NAME` of the dead-letter stream (default: a provider's or council's own copy, else SMARTCITY_DLQ)"},
		jsonFlag(&d.json),
	}
	return append(flags, cliflags.NATSFlags(&d.conn, e.Getenv)...)
}

func (d *dlqFlags) filter() dlq.Filter {
	return dlq.Filter{Reason: d.reason, Seqs: d.seqs, Limit: d.limit}
}

// open connects to the dead letters the credentials may read. A provider's
// or a council's seed names its inbox prefix, _INBOX.provider.<p> or
// _INBOX.council.<m>: its own dead letters are then the platform's copy for
// its account, SMARTCITY_DLQ_<role>-<id>, read through the part of the
// platform's API its account imports (docs/security.md). Anybody else (the
// operator) reads the platform's stream, --stream. An explicit --stream
// always wins.
func (d *dlqFlags) open(ctx context.Context, e Env, cmd *cli.Command) (context.Context, jetstream.JetStream, func(), error) {
	prefix := d.conn.InboxPrefix
	if prefix == "" && d.conn.Creds != "" {
		var err error
		if prefix, err = natsconn.InboxPrefixOf(d.conn.Creds); err != nil {
			return ctx, nil, nil, failed(err)
		}
	}
	apiPrefix := ""
	if t := strings.Split(prefix, "."); len(t) == 3 && t[0] == "_INBOX" && (t[1] == natsauth.RoleProvider || t[1] == natsauth.RoleCouncil) && !cmd.IsSet("stream") {
		d.stream = natsauth.DeadLetterCopy(natsauth.Account(t[1], t[2]))
		apiPrefix = natsauth.DeadLetterAPIPrefix
	}
	return e.jetStream(ctx, d.conn, apiPrefix)
}

func dlqCommand(e Env) *cli.Command {
	return &cli.Command{
		Name:  "dlq",
		Usage: "list and replay dead letters",
		Description: `Dead letters are messages the platform rejected, stored whole with their
original subject and rejection reason. A provider or a council reads its
own, with its usual credentials: kpictl recognises them by the inbox prefix
the seed file names (_INBOX.provider.<p>, _INBOX.council.<m>) and reads the
platform's copy of that publisher's dead letters, SMARTCITY_DLQ_<account>.
The operator reads the platform's dead-letter stream, SMARTCITY_DLQ.`,
		Commands: []*cli.Command{dlqListCommand(e), dlqReplayCommand(e)},
		Action:   needsCommand,
	}
}

func dlqListCommand(e Env) *cli.Command {
	var d dlqFlags
	return &cli.Command{
		Name:  "list",
		Usage: "show dead letters (your own, as a provider or council) without consuming them",
		Description: `Shows dead letters without consuming them: stream sequence, original
subject, reason, time received and the first 60 bytes of the message. With
--json, one JSON object per line and dead letter, with the whole message,
its reason and the rejection detail. A provider or a council sees its own
dead letters only, the operator all of them ('kpictl dlq --help').

Examples:
  kpictl dlq list --creds provider-fcc-medi-ambient.nk --tls-ca ca.pem
  kpictl dlq list --reason future_time --limit 20
  kpictl dlq list --json | jq -r .data`,
		Flags: d.flags(e, "100"),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Present() {
				return usagef(cmd, "dlq list takes no arguments, got %q", cmd.Args().Slice())
			}
			ctx, js, closeNATS, err := d.open(ctx, e, cmd)
			if err != nil {
				return err
			}
			defer closeNATS()
			letters, err := dlq.List(ctx, js, d.stream, d.filter())
			if err != nil {
				return stopped(ctx, err)
			}
			if d.json {
				enc := json.NewEncoder(e.Stdout)
				for _, l := range letters {
					if err := enc.Encode(l); err != nil {
						return failed(fmt.Errorf("write JSON: %w", err))
					}
				}
				return nil
			}
			if len(letters) == 0 {
				suffix := ""
				if d.reason != "" {
					suffix = " with reason " + d.reason
				}
				fmt.Fprintf(e.Stdout, "no dead letters in %s%s\n", d.stream, suffix)
				return nil
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tSUBJECT\tREASON\tRECEIVED\tMESSAGE")
			for _, l := range letters {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", l.Seq, l.Subject, l.Reason, l.ReceivedAt, preview([]byte(l.Data), 60))
			}
			if err := tw.Flush(); err != nil {
				return failed(err)
			}
			if d.limit > 0 && len(letters) == d.limit {
				fmt.Fprintf(e.Stderr, "kpictl: showing the first %d; use --limit 0 for all\n", d.limit)
			}
			return nil
		},
	}
}

// preview is the first n bytes of b, with anything unprintable shown as a
// dot, and an ellipsis when cut.
func preview(b []byte, n int) string {
	cut := len(b) > n
	if cut {
		b = b[:n]
	}
	out := bytes.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '.'
		}
		return r
	}, bytes.ToValidUTF8(b, []byte(".")))
	s := string(out)
	if cut {
		s += "…"
	}
	return s
}

func dlqReplayCommand(e Env) *cli.Command {
	var (
		d      dlqFlags
		dryRun bool
	)
	return &cli.Command{
		Name:  "replay",
		Usage: "publish dead letters again on their original subject",
		Description: `Re-publishes the chosen dead letters' original bytes on their original
subject (with a fresh Nats-Msg-Id, so the broker does not drop them as
copies) and waits for each acknowledgement; the dead letters stay in their
stream, and replaying one twice is harmless (the platform stores each event
once). Replay after fixing the cause (for example a missing catalogue entry
or a platform setting): a message that is still invalid is dead-lettered
again. A provider or a council replays its own dead letters, the operator
any. Exit status 1 when any replay failed.

Examples:
  kpictl dlq replay --reason too_late --dry-run
  kpictl dlq replay --seq 42
  kpictl dlq replay --reason subject_mismatch --limit 100`,
		Flags: append(d.flags(e, "0"),
			&cli.BoolFlag{Name: "dry-run", Destination: &dryRun, Usage: "show what would be replayed; change nothing"}),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Present() {
				return usagef(cmd, "dlq replay takes no arguments, got %q", cmd.Args().Slice())
			}
			ctx, js, closeNATS, err := d.open(ctx, e, cmd)
			if err != nil {
				return err
			}
			defer closeNATS()
			type outcome struct {
				Seq     uint64 `json:"seq"`
				Subject string `json:"subject"`
				Reason  string `json:"reason"`
				Outcome string `json:"outcome"` // replayed, would_replay or failed
				Error   string `json:"error,omitempty"`
			}
			var outcomes []outcome
			replayed, failures, err := dlq.Replay(ctx, js, d.stream, d.filter(), dryRun, func(o dlq.Outcome) {
				l := o.Letter
				out := outcome{Seq: l.Seq, Subject: l.Subject, Reason: l.Reason, Outcome: "replayed"}
				switch {
				case o.Err != nil:
					out.Outcome, out.Error = "failed", o.Err.Error()
				case dryRun:
					out.Outcome = "would_replay"
				}
				outcomes = append(outcomes, out)
				if d.json {
					return
				}
				switch out.Outcome {
				case "failed":
					fmt.Fprintf(e.Stdout, "failed   %d %s (%s): %s\n", l.Seq, l.Subject, l.Reason, out.Error)
				case "would_replay":
					fmt.Fprintf(e.Stdout, "would replay %d %s (%s)\n", l.Seq, l.Subject, l.Reason)
				default:
					fmt.Fprintf(e.Stdout, "replayed %d %s (%s)\n", l.Seq, l.Subject, l.Reason)
				}
			})
			if err != nil {
				return stopped(ctx, err)
			}
			if d.json {
				if err := printJSON(e.Stdout, struct {
					Replayed int       `json:"replayed"`
					Failed   int       `json:"failed"`
					DryRun   bool      `json:"dry_run"`
					Letters  []outcome `json:"letters"`
				}{replayed, failures, dryRun, append([]outcome{}, outcomes...)}); err != nil {
					return err
				}
			} else {
				verb := "replayed"
				if dryRun {
					verb = "would be replayed (dry run: nothing sent)"
				}
				line := fmt.Sprintf("%s %s", plural(replayed, "dead letter"), verb)
				if failures > 0 {
					line += "; " + strconv.Itoa(failures) + " failed"
				}
				fmt.Fprintln(e.Stdout, line)
			}
			if failures > 0 {
				return status{code: ExitFailed}
			}
			return nil
		},
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
