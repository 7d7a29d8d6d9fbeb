package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/urfave/cli/v3"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/kpictl/input"
	"github.com/assoliment/assoliment/services/kpictl/publish"
	"github.com/assoliment/assoliment/services/platform/cliflags"
	"github.com/assoliment/assoliment/services/platform/natsauth"
	"github.com/assoliment/assoliment/services/platform/natsconn"
)

// rulesFlags are how events are judged: validate and publish share them.
type rulesFlags struct {
	subject     string
	now         time.Time
	maxLateness time.Duration
	json        bool
}

func (r *rulesFlags) flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "subject", Validator: cliflags.Into(&r.subject, cliflags.Checked(func(s string) error {
			if s == "" {
				return nil
			}
			if _, err := contract.ParseSubject(s); err != nil {
				return fmt.Errorf("must be smartcity.<municipality>.<publisher>.<kind>: %w", err)
			}
			return nil
		})), Usage: "judge every event as if published on `SUBJECT` smartcity.<municipality>.<publisher>.<kind> (default: the subject each event's envelope implies)"},
		&cli.StringFlag{Name: "now", Validator: cliflags.Into(&r.now, cliflags.Time),
			Usage: "`TIME` of the clock for the time rules, RFC 3339 (default: the current time)"},
		&cli.StringFlag{Name: "max-lateness", Value: "400d", ValidateDefaults: true,
			Validator: cliflags.Into(&r.maxLateness, cliflags.DurationIn(time.Minute, 3650*24*time.Hour)),
			Usage:     "oldest accepted event time, a `DURATION` from 1m to 3650d, as the platform's --max-lateness"},
		jsonFlag(&r.json),
	}
}

func jsonFlag(dst *bool) cli.Flag {
	return &cli.BoolFlag{Name: "json", Destination: dst, Usage: "print the result as JSON"}
}

func (r *rulesFlags) rules(e Env) input.Rules {
	now := r.now
	if now.IsZero() {
		now = e.Now()
	}
	return input.Rules{Rules: contract.Rules{Now: now, MaxLateness: r.maxLateness}, Subject: r.subject}
}

// files are the FILE arguments; "-" is standard input, once.
func files(cmd *cli.Command) ([]string, error) {
	args := cmd.Args().Slice()
	if len(args) == 0 {
		return nil, usagef(cmd, "%s needs one or more FILE arguments (- for standard input)", cmd.Name)
	}
	stdin := 0
	for _, a := range args {
		if a == input.Stdin {
			stdin++
		}
	}
	if stdin > 1 {
		return nil, usagef(cmd, "standard input (-) can be read only once")
	}
	return args, nil
}

// readAll reads every file; unreadable files are reported and make ok
// false.
func (e Env) readAll(files []string) (items []input.Item, ok bool) {
	ok = true
	for _, f := range files {
		its, err := input.ReadFile(f, e.Stdin)
		if err != nil {
			fmt.Fprintf(e.Stderr, "kpictl: %v\n", err)
			ok = false
			continue
		}
		items = append(items, its...)
	}
	return items, ok
}

// Rejection is an invalid event of a file.
type Rejection struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Subject string `json:"subject"`
	ID      string `json:"id,omitempty"`
	Reason  string `json:"reason"`
	Detail  string `json:"detail"`
}

func rejection(it input.Item, subject string, rej *contract.Rejection) Rejection {
	return Rejection{File: it.File, Line: it.Line, Subject: subject, ID: input.ID(it.Data), Reason: string(rej.Reason), Detail: rej.Message}
}

// String is the text form: FILE:LINE: REASON: DETAIL.
func (r Rejection) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", r.File, r.Line, r.Reason, r.Detail)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return failed(fmt.Errorf("write JSON: %w", err))
	}
	return nil
}

func validateCommand(e Env) *cli.Command {
	var r rulesFlags
	return &cli.Command{
		Name:      "validate",
		Usage:     "check event files against contract v1 (offline)",
		ArgsUsage: "FILE...",
		Description: `Checks every event in the files against contract v1, exactly as the platform
does (subject derived from each event's municipality, publisher and type),
without any server. A file is one JSON event, a JSON array of events, or JSON
Lines (one event per line); - reads standard input. Each invalid event is
printed as

  FILE:LINE: REASON: DETAIL

where REASON is one of the contract's rejection reasons, then the counts.
Exit status 0 when every event is valid, 3 when some are not, 1 when a file
cannot be read.

Examples:
  kpictl validate events.jsonl
  kpictl validate today/*.json --now 2026-11-20T12:00:00Z
  kpictl validate readings.jsonl --subject smartcity.sabadell.fcc-medi-ambient.measurement
  export-readings | kpictl validate - --json`,
		Flags: r.flags(),
		Action: func(_ context.Context, cmd *cli.Command) error {
			names, err := files(cmd)
			if err != nil {
				return err
			}
			items, ok := e.readAll(names)
			rules := r.rules(e)
			result := struct {
				Events     int         `json:"events"`
				Valid      int         `json:"valid"`
				Invalid    int         `json:"invalid"`
				Rejections []Rejection `json:"rejections"`
			}{Events: len(items), Rejections: []Rejection{}}
			for _, it := range items {
				if subject, _, rej := it.Check(rules); rej != nil {
					result.Rejections = append(result.Rejections, rejection(it, subject, rej))
				}
			}
			result.Invalid = len(result.Rejections)
			result.Valid = result.Events - result.Invalid
			if r.json {
				if err := printJSON(e.Stdout, result); err != nil {
					return err
				}
			} else {
				for _, rej := range result.Rejections {
					fmt.Fprintln(e.Stdout, rej)
				}
				fmt.Fprintf(e.Stdout, "%s checked: %d valid, %d invalid\n", plural(result.Events, "event"), result.Valid, result.Invalid)
			}
			switch {
			case !ok:
				return status{code: ExitFailed}
			case result.Invalid > 0:
				return status{code: ExitInvalid}
			}
			return nil
		},
	}
}

func publishCommand(e Env) *cli.Command {
	var (
		r            rulesFlags
		conn         cliflags.NATS
		allowInvalid bool
		maxInFlight  int
	)
	flags := append(r.flags(),
		&cli.BoolFlag{Name: "allow-invalid", Destination: &allowInvalid,
			Usage: "publish invalid events too, to exercise the platform's dead-letter handling"},
		&cli.StringFlag{Name: "max-in-flight", Value: "256", ValidateDefaults: true,
			Validator: cliflags.Into(&maxInFlight, cliflags.IntIn(1, 65536)),
			Usage:     "`N` messages awaiting a broker acknowledgement at most (1 to 65536)"})
	flags = append(flags, cliflags.NATSFlags(&conn, e.Getenv)...)
	return &cli.Command{
		Name:      "publish",
		Usage:     "publish event files to NATS JetStream",
		ArgsUsage: "FILE...",
		Description: `Publishes the events in the files (JSON, JSON array or JSON Lines; - reads
standard input) to NATS JetStream, each on the subject its envelope implies
and with Nats-Msg-Id set to its id, and waits for the broker's
acknowledgements. Shows a progress bar on a terminal, progress lines
otherwise (on standard error). Invalid events are reported
(FILE:LINE: REASON: DETAIL) and skipped unless --allow-invalid is given.
Exit status 1 when any event was not acknowledged, 3 when invalid events
were skipped.

Credentials: the seed file your operator gave you (--creds provider-<p>.nk)
and, for a private certificate authority, --tls-ca. The inbox prefix your
permissions allow is read from the seed file; without one in it, it is
derived from the publisher the events name (_INBOX.provider.<publisher>, or
_INBOX.council.<municipality> for a council).

Examples:
  kpictl publish readings.jsonl
  kpictl publish --nats-url tls://nats.example.cat:4222 --creds provider-fcc-medi-ambient.nk day1.jsonl day2.jsonl
  NATS_URL=tls://nats.example.cat:4222 NATS_CREDS=council-sabadell.nk NATS_TLS_CA=ca.pem kpictl publish catalog.json
  kpictl publish broken.jsonl --allow-invalid`,
		Flags: flags,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			names, err := files(cmd)
			if err != nil {
				return err
			}
			items, ok := e.readAll(names)
			if !ok {
				return status{code: ExitFailed}
			}
			if conn.InboxPrefix == "" && conn.Creds != "" {
				if conn.InboxPrefix, err = natsconn.InboxPrefixOf(conn.Creds); err != nil {
					return failed(err)
				}
			}
			if conn.InboxPrefix == "" {
				conn.InboxPrefix = inboxPrefixOf(items)
			}
			ctx, js, closeNATS, err := e.jetStream(ctx, conn, "")
			if err != nil {
				return err
			}
			defer closeNATS()
			var rejections []Rejection
			prog := newProgress(e, len(items))
			rep, err := publish.Publish(ctx, js, items, publish.Options{
				Rules: r.rules(e), AllowInvalid: allowInvalid, MaxInFlight: maxInFlight,
				OnInvalid: func(it input.Item, subject string, rej *contract.Rejection) {
					rejections = append(rejections, rejection(it, subject, rej))
					if !r.json {
						prog.interrupt(func() { fmt.Fprintln(e.Stdout, rejections[len(rejections)-1]) })
					}
				},
				OnProgress: prog.set,
			})
			prog.finish()
			if r.json {
				out := struct {
					publish.Report
					Rejections []Rejection `json:"rejections"`
				}{rep, append([]Rejection{}, rejections...)}
				if err := printJSON(e.Stdout, out); err != nil {
					return err
				}
			} else {
				skipped := ""
				if rep.SkippedInvalid > 0 {
					skipped = fmt.Sprintf(" (%d skipped; publish them with --allow-invalid)", rep.SkippedInvalid)
				}
				fmt.Fprintf(e.Stdout, "%s: %d acked (%d duplicates dropped by the broker), %d failed, %d invalid%s\n",
					plural(rep.Events, "event"), rep.Acked, rep.Duplicates, rep.Failed, rep.Invalid, skipped)
			}
			for _, f := range rep.Failures {
				fmt.Fprintf(e.Stderr, "kpictl: event %s on %s not acknowledged: %s\n", f.ID, f.Subject, f.Error)
			}
			if n := rep.Failed - len(rep.Failures); n > 0 {
				fmt.Fprintf(e.Stderr, "kpictl: and %d more not acknowledged\n", n)
			}
			switch {
			case err != nil:
				if n := rep.Sent - rep.Acked - rep.Failed; n > 0 {
					fmt.Fprintf(e.Stderr, "kpictl: %d events sent without an acknowledgement yet\n", n)
				}
				return stopped(ctx, err)
			case rep.Failed > 0:
				return status{code: ExitFailed}
			case rep.SkippedInvalid > 0:
				return status{code: ExitInvalid}
			}
			return nil
		},
	}
}

// inboxPrefixOf is the inbox prefix of the one publisher the events name:
// _INBOX.provider.<publisher>, or _INBOX.council.<municipality> for the
// council of one municipality. It is "" (the client library's default)
// for events of several publishers.
func inboxPrefixOf(items []input.Item) string {
	who := map[string]bool{}
	for _, it := range items {
		var env struct{ Municipality, Publisher string }
		if json.Unmarshal(it.Data, &env) != nil || !contract.ValidSlug(env.Publisher) {
			continue
		}
		if env.Publisher != natsauth.RoleCouncil {
			who[natsauth.InboxPrefix(natsauth.RoleProvider, env.Publisher)] = true
		} else if contract.ValidSlug(env.Municipality) {
			who[natsauth.InboxPrefix(natsauth.RoleCouncil, env.Municipality)] = true
		}
	}
	if len(who) != 1 {
		return ""
	}
	for p := range who {
		return p
	}
	return ""
}

// jetStream connects with conn, once (a command-line tool reports an
// unreachable server at once rather than retrying), and gives up on an
// acknowledgement after 30 seconds. apiPrefix, when not empty, is where
// the JetStream API is reached (a publisher's dead letters). A
// permissions violation, which the server reports asynchronously, ends the
// returned context with it as the cause (see stopped): no acknowledgement
// will come.
func (e Env) jetStream(ctx context.Context, conn cliflags.NATS, apiPrefix string) (context.Context, jetstream.JetStream, func(), error) {
	nc, err := conn.Connect(ctx, "kpictl", 1, e.logger())
	if err != nil {
		return ctx, nil, nil, failed(err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			cancel(fmt.Errorf("%w (check the credentials and --inbox-prefix)", err))
		}
	})
	closeAll := func() {
		cancel(nil)
		nc.Close()
	}
	timeout := jetstream.WithPublishAsyncTimeout(30 * time.Second)
	var js jetstream.JetStream
	if apiPrefix != "" {
		js, err = jetstream.NewWithAPIPrefix(nc, apiPrefix, timeout)
	} else {
		js, err = jetstream.New(nc, timeout)
	}
	if err != nil {
		closeAll()
		return ctx, nil, nil, failed(fmt.Errorf("JetStream: %w", err))
	}
	return ctx, js, closeAll, nil
}

// stopped is the failure err, or the reason ctx ended when it did.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return failed(err)
}
