package cmd

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// runShared lists the agents the project may use (agent list --shared).
func (o *AgentListOptions) runShared(ctx context.Context) error {
	agents, err := o.client.AuthorizedAgents(ctx, o.project)
	if err != nil {
		return err
	}
	if len(agents) == 0 && o.Output.Text() {
		fmt.Fprintf(o.ErrOut, "no agent is shared with %s, and it has none of its own\n", o.project)
		return nil
	}
	return o.print(newSharedAgentList(agents))
}

// sharedAgentList is what agent list --shared prints.
type sharedAgentList struct {
	Agents []sharedAgent `json:"agents"`
}

// sharedAgent is one authorization: an agent and the access it gives.
type sharedAgent struct {
	Project string `json:"project"`
	Name    string `json:"name"`
	ID      int64  `json:"id"`
	// Access is ci_access or user_access.
	Access string `json:"access"`
	// AccessAs is the access_as mode; null for a user_access section
	// without one (it grants nothing).
	AccessAs           *string        `json:"accessAs"`
	Environments       []string       `json:"environments"`
	ResourceManagement bool           `json:"resourceManagement"`
	Config             map[string]any `json:"config"`
}

func newSharedAgentList(agents []gitlab.AuthorizedAgent) sharedAgentList {
	l := sharedAgentList{Agents: []sharedAgent{}}
	for _, a := range agents {
		s := sharedAgent{Project: a.Project, Name: a.Name, ID: a.ID, Access: a.Access,
			Environments: orEmpty(a.Environments), ResourceManagement: a.ResourceManagement, Config: a.Config}
		if a.AccessAs != "" {
			as := a.AccessAs
			s.AccessAs = &as
		}
		if s.Config == nil {
			s.Config = map[string]any{}
		}
		l.Agents = append(l.Agents, s)
	}
	return l
}

// Table is a row per agent and access kind.
func (l sharedAgentList) Table(bool) *ui.Table {
	t := &ui.Table{Headers: []string{"agent project", "agent", "access", "access as", "environments", "resource management"}}
	for _, a := range l.Agents {
		envs := "<all>"
		if a.Access == gitlab.AccessUser {
			envs = "<none>" // environments are a ci_access setting
		}
		if len(a.Environments) > 0 {
			envs = strings.Join(a.Environments, ",")
		}
		as := ui.C(deref(a.AccessAs))
		if a.AccessAs == nil {
			as = ui.S("<none>", ui.Warn)
		}
		t.Rows = append(t.Rows, []ui.Cell{ui.C(orNone(a.Project)), ui.C(a.Name), ui.C(a.Access), as,
			ui.C(envs), ui.C(strconv.FormatBool(a.ResourceManagement))})
	}
	return t
}

// Names are the agents as agent/PROJECT:NAME, once per access kind.
func (l sharedAgentList) Names() []string {
	names := make([]string, len(l.Agents))
	for i, a := range l.Agents {
		names[i] = "agent/" + a.Project + ":" + a.Name
	}
	return names
}

// ItemsField is the document's list of agents.
func (sharedAgentList) ItemsField() string { return "agents" }
