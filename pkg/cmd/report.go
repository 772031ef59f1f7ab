package cmd

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// progressReport prints what an action does on w (stderr): each step a line,
// each wait a progress line (redrawn on a terminal), and with -v the time
// each phase took. Messages carry text from GitLab and the cluster: they are
// printed inert.
type progressReport struct {
	w       io.Writer
	noColor bool
	verbose int

	mu sync.Mutex
	p  *ui.Progress
}

var _ install.Reporter = (*progressReport)(nil)

func (r *progressReport) Waiting(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p == nil {
		r.p = ui.NewProgress(r.w, r.noColor)
	}
	r.p.Update("%s", safetext.Line(msg))
}

func (r *progressReport) Step(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p != nil {
		r.p.Done("%s", safetext.Line(msg))
		r.p = nil
		return
	}
	fmt.Fprintln(r.w, safetext.Line(msg))
}

func (r *progressReport) Phase(p install.Phase) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endLocked()
	if r.verbose >= 1 {
		fmt.Fprintf(r.w, "  %-22s %s\n", p.Name, p.Duration.Round(time.Millisecond))
	}
}

// End clears a progress line left by a wait that failed.
func (r *progressReport) End() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endLocked()
}

func (r *progressReport) endLocked() {
	if r.p != nil {
		r.p.Done("")
		r.p = nil
	}
}
