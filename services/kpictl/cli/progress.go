package cli

import (
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows publishing progress on standard error: a bar on a
// terminal, lines otherwise.
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
