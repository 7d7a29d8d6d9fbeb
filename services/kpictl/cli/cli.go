// Package cli runs kpictl commands: it ties the configuration to the input,
// publish, dlq and assessment packages and turns outcomes into output and
// exit statuses.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/kpictl/assessment"
	"github.com/assoliment/assoliment/services/kpictl/config"
	"github.com/assoliment/assoliment/services/kpictl/dlq"
	"github.com/assoliment/assoliment/services/kpictl/input"
	"github.com/assoliment/assoliment/services/kpictl/publish"
)

// Exit statuses.
const (
	ExitOK      = 0
	ExitFailed  = 1 // something was invalid, failed or not found
	ExitUsageIO = 2 // bad command line, unreadable file, unreachable server
)

// Env is what a command runs with.
type Env struct {
	Args   []string // without the program name
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
	// Terminal is true when Stderr is a terminal: publish draws a progress
	// bar instead of progress lines.
	Terminal bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// HTTP is the client for the evaluator (a 30-second client when nil).
	HTTP *http.Client
}

// Run runs one command and returns the exit status.
func Run(ctx context.Context, e Env) int {
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.HTTP == nil {
		e.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	cfg, err := config.Parse(e.Args, e.Getenv)
	var help *config.HelpError
	if errors.As(err, &help) {
		fmt.Fprint(e.Stdout, help.Text)
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(e.Stderr, "kpictl: %v\n", err)
		return ExitUsageIO
	}
	switch cfg.Command {
	case config.CmdValidate:
		return validate(e, cfg)
	case config.CmdPublish:
		return publishFiles(ctx, e, cfg)
	case config.CmdDLQList:
		return dlqList(ctx, e, cfg)
	case config.CmdDLQReplay:
		return dlqReplay(ctx, e, cfg)
	case config.CmdAssessment:
		return showAssessment(ctx, e, cfg)
	}
	fmt.Fprintf(e.Stderr, "kpictl: command %q is not implemented\n", cfg.Command)
	return ExitUsageIO
}

func (e Env) errorf(format string, args ...any) {
	fmt.Fprintf(e.Stderr, "kpictl: "+format+"\n", args...)
}

func rules(e Env, cfg config.Config) input.Rules {
	now := cfg.Now
	if now.IsZero() {
		now = e.Now()
	}
	return input.Rules{Rules: contract.Rules{Now: now, MaxLateness: cfg.MaxLateness}, Subject: cfg.Subject}
}

// readAll reads every file; unreadable files are reported and make ok false.
func readAll(e Env, files []string) (items []input.Item, ok bool) {
	ok = true
	for _, f := range files {
		its, err := input.ReadFile(f)
		if err != nil {
			e.errorf("%v", err)
			ok = false
			continue
		}
		items = append(items, its...)
	}
	return items, ok
}

func report(w io.Writer, it input.Item, rej *contract.Rejection) {
	fmt.Fprintf(w, "%s: %s: %s\n", it.Where(), rej.Reason, rej.Message)
}

func validate(e Env, cfg config.Config) int {
	items, ok := readAll(e, cfg.Args)
	r := rules(e, cfg)
	invalid := 0
	for _, it := range items {
		if _, _, rej := it.Check(r); rej != nil {
			invalid++
			report(e.Stdout, it, rej)
		}
	}
	fmt.Fprintf(e.Stderr, "kpictl: %d events checked: %d valid, %d invalid\n", len(items), len(items)-invalid, invalid)
	switch {
	case !ok:
		return ExitUsageIO
	case invalid > 0:
		return ExitFailed
	}
	return ExitOK
}

func connect(cfg config.Config) (*nats.Conn, jetstream.JetStream, error) {
	opts := []nats.Option{nats.Name("kpictl"), nats.Timeout(10 * time.Second)}
	if cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	}
	nc, err := nats.Connect(cfg.NATSURL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w", cfg.NATSURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("JetStream: %w", err)
	}
	return nc, js, nil
}

func publishFiles(ctx context.Context, e Env, cfg config.Config) int {
	items, ok := readAll(e, cfg.Args)
	if !ok {
		return ExitUsageIO
	}
	nc, js, err := connect(cfg)
	if err != nil {
		e.errorf("%v", err)
		return ExitUsageIO
	}
	defer nc.Close()
	prog := newProgress(e, len(items))
	rep, err := publish.Publish(ctx, js, items, publish.Options{
		Rules: rules(e, cfg), AllowInvalid: cfg.AllowInvalid, MaxInFlight: cfg.MaxInFlight,
		OnInvalid: func(it input.Item, rej *contract.Rejection) {
			prog.interrupt(func() { report(e.Stderr, it, rej) })
		},
		OnProgress: prog.set,
	})
	prog.finish()
	skipped := ""
	if rep.SkippedInvalid > 0 {
		skipped = fmt.Sprintf(" (%d skipped; publish them with --allow-invalid)", rep.SkippedInvalid)
	}
	fmt.Fprintf(e.Stdout, "%d events: %d acked (%d duplicates dropped by the broker), %d failed, %d invalid%s\n",
		rep.Events, rep.Acked, rep.Duplicates, rep.Failed, rep.Invalid, skipped)
	if err != nil {
		e.errorf("stopped: %v", err)
		return ExitFailed
	}
	if rep.Failed > 0 || rep.SkippedInvalid > 0 {
		return ExitFailed
	}
	return ExitOK
}

// progress shows publishing progress: a bar on a terminal, lines otherwise.
type progress struct {
	e     Env
	total int
	bar   *progressbar.ProgressBar
	step  int
	last  int
}

func newProgress(e Env, total int) *progress {
	p := &progress{e: e, total: total, step: max(1000, total/10)}
	if e.Terminal && total > 0 {
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(e.Stderr),
			progressbar.OptionSetDescription("publishing"), progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	return p
}

func (p *progress) set(done int) {
	if p.bar != nil {
		_ = p.bar.Set(done)
		return
	}
	if done-p.last >= p.step || (done == p.total && done != p.last) {
		p.last = done
		fmt.Fprintf(p.e.Stderr, "kpictl: sent %d/%d events\n", done, p.total)
	}
}

// interrupt prints a line without breaking the bar.
func (p *progress) interrupt(fn func()) {
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fn()
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

func filter(cfg config.Config) dlq.Filter {
	return dlq.Filter{Reason: cfg.Reason, Seqs: cfg.Seqs, Limit: cfg.Limit}
}

func dlqList(ctx context.Context, e Env, cfg config.Config) int {
	nc, js, err := connect(cfg)
	if err != nil {
		e.errorf("%v", err)
		return ExitUsageIO
	}
	defer nc.Close()
	letters, err := dlq.List(ctx, js, cfg.DLQStream, filter(cfg))
	if err != nil {
		e.errorf("%v", err)
		return ExitUsageIO
	}
	if cfg.JSON {
		enc := json.NewEncoder(e.Stdout)
		for _, l := range letters {
			if err := enc.Encode(l); err != nil {
				e.errorf("%v", err)
				return ExitUsageIO
			}
		}
		return ExitOK
	}
	if len(letters) == 0 {
		fmt.Fprintf(e.Stdout, "no dead letters in %s%s\n", cfg.DLQStream, reasonSuffix(cfg.Reason))
		return ExitOK
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tSUBJECT\tREASON\tRECEIVED\tMESSAGE")
	for _, l := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", l.Seq, l.Subject, l.Reason, l.ReceivedAt, preview([]byte(l.Data), 60))
	}
	_ = tw.Flush()
	if cfg.Limit > 0 && len(letters) == cfg.Limit {
		fmt.Fprintf(e.Stderr, "kpictl: showing the first %d; use --limit 0 for all\n", cfg.Limit)
	}
	return ExitOK
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return " with reason " + r
}

// preview is the first n bytes of b, with anything unprintable shown as a
// dot, and an ellipsis when cut.
func preview(b []byte, n int) string {
	cut := len(b) > n
	if cut {
		b = b[:n]
	}
	out := bytes.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\t' {
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

func dlqReplay(ctx context.Context, e Env, cfg config.Config) int {
	nc, js, err := connect(cfg)
	if err != nil {
		e.errorf("%v", err)
		return ExitUsageIO
	}
	defer nc.Close()
	replayed, failed, err := dlq.Replay(ctx, js, cfg.DLQStream, filter(cfg), cfg.DryRun, func(o dlq.Outcome) {
		l := o.Letter
		switch {
		case o.Err != nil:
			fmt.Fprintf(e.Stdout, "failed   %d %s (%s): %v\n", l.Seq, l.Subject, l.Reason, o.Err)
		case cfg.DryRun:
			fmt.Fprintf(e.Stdout, "would replay %d %s (%s)\n", l.Seq, l.Subject, l.Reason)
		default:
			fmt.Fprintf(e.Stdout, "replayed %d %s (%s)\n", l.Seq, l.Subject, l.Reason)
		}
	})
	if err != nil {
		e.errorf("%v", err)
		return ExitUsageIO
	}
	verb := "replayed and removed from " + cfg.DLQStream
	if cfg.DryRun {
		verb = "would be replayed (dry run: nothing changed)"
	}
	fmt.Fprintf(e.Stdout, "%s %s", plural(replayed, "dead letter"), verb)
	if failed > 0 {
		fmt.Fprintf(e.Stdout, "; %d failed", failed)
	}
	fmt.Fprintln(e.Stdout)
	if failed > 0 {
		return ExitFailed
	}
	return ExitOK
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func showAssessment(ctx context.Context, e Env, cfg config.Config) int {
	a, body, err := assessment.Fetch(ctx, e.HTTP, cfg.EvaluatorURL, cfg.Args[0], cfg.At)
	if errors.Is(err, assessment.ErrNotFound) {
		e.errorf("%v", err)
		return ExitFailed
	}
	if err != nil {
		e.errorf("%v", err)
		return ExitUsageIO
	}
	if cfg.JSON {
		var buf bytes.Buffer
		if json.Indent(&buf, body, "", "  ") != nil {
			buf.Reset()
			buf.Write(body)
		}
		fmt.Fprintln(e.Stdout, strings.TrimSpace(buf.String()))
		return ExitOK
	}
	if err := assessment.Render(e.Stdout, a); err != nil {
		e.errorf("%v", err)
		return ExitUsageIO
	}
	return ExitOK
}
