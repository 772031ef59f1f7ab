package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// groupStatusOptions is status --group: every agent of the projects under
// a group, from GitLab's GraphQL API.
type groupStatusOptions struct {
	Group       string
	NoSubgroups bool
}

// completeGroup settles status --group: no NAME, no project, no cluster.
func (o *StatusOptions) completeGroup(args []string) error {
	if len(args) > 0 {
		return errors.New("status --group takes no agent NAME: it shows every agent under the group")
	}
	if err := o.Output.Validate(); err != nil {
		return err
	}
	var err error
	o.client, err = o.GitLab.Client(o.Factory, o.ErrOut)
	return err
}

// runGroup reads the group's agents and KAS's version, and prints them.
func (o *StatusOptions) runGroup(ctx context.Context) error {
	kas, err := o.client.DiscoverKAS(ctx)
	if err != nil {
		var disabled *gitlab.ErrKASDisabled
		if !errors.As(err, &disabled) {
			return err
		}
		kas = &gitlab.KAS{}
	}
	var progress func(done, total int)
	if ui.IsTerminal(o.ErrOut) {
		p := ui.NewProgress(o.ErrOut, o.Global.NoColor)
		var mu sync.Mutex
		progress = func(done, total int) {
			mu.Lock()
			defer mu.Unlock()
			p.Update("reading agents: %d of %d projects", done, total)
		}
		defer p.Done("")
	}
	agents, err := o.client.GroupAgents(ctx, o.Group, !o.NoSubgroups, progress)
	if err != nil {
		return err
	}
	return o.print(newGroupStatus(o.Group, kas.Version, agents, time.Now()))
}

// groupStatus is what status --group prints.
type groupStatus struct {
	Group   string       `json:"group"`
	KAS     groupKAS     `json:"kas"`
	Agents  []groupAgent `json:"agents"`
	Summary groupSummary `json:"summary"`
}

type groupKAS struct {
	Version string `json:"version"`
}

// groupAgent is one agent's row.
type groupAgent struct {
	Project   string  `json:"project"`
	Name      string  `json:"name"`
	ID        int64   `json:"id"`
	Connected bool    `json:"connected"`
	Version   *string `json:"version"`
	// Skew is ok, warn (more than one minor version behind KAS) or fail
	// (ahead of KAS), as status and doctor judge it; null when a version
	// is unknown.
	Skew   *string `json:"skew"`
	Tokens int     `json:"tokens"`
	// OldestTokenAge is the age of the oldest active token (2d, 5h); null
	// without one.
	OldestTokenAge *string `json:"oldestTokenAge"`
	// Receptive is EE's isReceptive; false where GitLab does not say
	// (CE has no receptive agents).
	Receptive bool `json:"receptive"`
}

type groupSummary struct {
	Agents    int `json:"agents"`
	Connected int `json:"connected"`
	Outdated  int `json:"outdated"`
	TwoTokens int `json:"twoTokens"`
}

// The skew verdicts.
const (
	skewOK   = "ok"
	skewWarn = "warn"
	skewFail = "fail"
)

// skewOf judges agentk's version against KAS's by install.Skew, the rule
// of install.SkewWarning and doctor's kas-version-skew: more than one minor
// version ahead of KAS fails, behind it warns; nil (unknown) when either
// version is missing or does not parse, never ok.
func skewOf(agentk, kas string) *string {
	d, known := install.Skew(agentk, kas)
	if !known {
		return nil
	}
	v := skewOK
	switch {
	case d > 1:
		v = skewFail
	case d < -1:
		v = skewWarn
	}
	return &v
}

func newGroupStatus(group, kas string, agents []gitlab.GroupAgent, now time.Time) groupStatus {
	r := groupStatus{Group: group, KAS: groupKAS{Version: kas}, Agents: []groupAgent{}}
	for _, a := range agents {
		g := groupAgent{Project: a.Project, Name: a.Name, ID: a.ID, Connected: a.Connected, Tokens: a.ActiveTokens,
			Receptive: a.Receptive != nil && *a.Receptive}
		if a.Version != "" {
			v := a.Version
			g.Version = &v
		}
		g.Skew = skewOf(a.Version, kas)
		if a.OldestToken != nil {
			age := ui.Age(a.OldestToken, now)
			g.OldestTokenAge = &age
		}
		r.Summary.Agents++
		if g.Connected {
			r.Summary.Connected++
		}
		if g.Skew != nil && *g.Skew != skewOK {
			r.Summary.Outdated++
		}
		if g.Tokens >= 2 {
			r.Summary.TwoTokens++
		}
		r.Agents = append(r.Agents, g)
	}
	return r
}

// deref is *s, or "<none>".
func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}

// Table is a row per agent (the text form adds the summary).
func (r groupStatus) Table(wide bool) *ui.Table {
	if !wide {
		return nil
	}
	return r.table()
}

func (r groupStatus) table() *ui.Table {
	t := &ui.Table{Headers: []string{"project", "agent", "connected", "version", "skew", "tokens", "oldest token", "receptive"}}
	skewStyle := map[string]ui.Style{skewOK: ui.Good, skewWarn: ui.Warn, skewFail: ui.Bad}
	for _, a := range r.Agents {
		conn := ui.S("no", ui.Warn)
		if a.Connected {
			conn = ui.S("yes", ui.Good)
		}
		skew := ui.C("<none>")
		if a.Skew != nil {
			skew = ui.S(*a.Skew, skewStyle[*a.Skew])
		}
		t.Rows = append(t.Rows, []ui.Cell{ui.C(a.Project), ui.C(a.Name), conn, ui.C(deref(a.Version)), skew,
			ui.C(strconv.Itoa(a.Tokens)), ui.C(deref(a.OldestTokenAge)), ui.C(strconv.FormatBool(a.Receptive))})
	}
	return t
}

// Names are the agents as agent/PROJECT:NAME.
func (r groupStatus) Names() []string {
	names := make([]string, len(r.Agents))
	for i, a := range r.Agents {
		names[i] = "agent/" + a.Project + ":" + a.Name
	}
	return names
}

// ItemsField is the document's list of agents.
func (groupStatus) ItemsField() string { return "agents" }

// WriteText is the table and the summary line.
func (r groupStatus) WriteText(w io.Writer, p *ui.Painter) error {
	if len(r.Agents) > 0 {
		t := r.table()
		t.Color = p.Colors()
		if err := t.Write(w); err != nil {
			return err
		}
	}
	s := r.Summary
	_, err := fmt.Fprintf(w, "%d agents, %d connected, %d outdated, %d with two tokens (KAS %s)\n",
		s.Agents, s.Connected, s.Outdated, s.TwoTokens, orNone(r.KAS.Version))
	return err
}
