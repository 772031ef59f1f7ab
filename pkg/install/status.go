package install

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// The verdicts of status.
const (
	Connected    = "connected"
	NotConnected = "installed-but-not-connected"
	NotInstalled = "not installed"
	// Installed is the verdict when GitLab was not asked: the agent runs
	// in the cluster; whether it is connected is not known.
	Installed        = "installed"
	versionSkewWarn  = "agentk %s is more than one minor version behind KAS %s: upgrade it"
	versionAheadWarn = "agentk %s is more than one minor version ahead of KAS %s: GitLab supports agentk one minor version either side of KAS"
)

// AgentStatus is one agent's state in GitLab and in the cluster.
type AgentStatus struct {
	Agent   *gitlab.Agent   `json:"agent"`
	Tokens  []*gitlab.Token `json:"tokens"`
	KAS     *gitlab.KAS     `json:"kas"`
	Cluster *ClusterState   `json:"cluster"`
	// Receptive is where KAS dials the agent, when it is receptive.
	Receptive *gitlab.URLConfiguration `json:"receptive,omitempty"`
	Verdict   string                   `json:"verdict"`
	// Warnings are problems worth acting on (version skew, ...).
	Warnings []string `json:"warnings,omitempty"`
	// Doctor is doctor's verdict on the agent, when the caller ran it.
	Doctor *Diagnosis `json:"doctor,omitempty"`
	// GitLabNotAsked says why GitLab's part (registration, tokens, KAS,
	// the connection) is missing, when it is.
	GitLabNotAsked string `json:"gitlabNotAsked,omitempty"`
}

// Diagnosis is doctor's verdict and the checks that did not pass.
type Diagnosis struct {
	Verdict string   `json:"verdict"`
	Failed  []string `json:"failed,omitempty"`
	Warned  []string `json:"warned,omitempty"`
}

// ClusterState is the agent's Deployment as it runs.
type ClusterState struct {
	Namespace  string `json:"namespace"`
	Deployment string `json:"deployment"`
	Desired    int32  `json:"desired"`
	Ready      int32  `json:"ready"`
	Available  int32  `json:"available"`
	Image      string `json:"image"`
	Version    string `json:"version"`
	// KasAddress is the address agentk is given (--kas-address).
	KasAddress string `json:"kasAddress,omitempty"`
}

// Status reports on the named agents (all of the project's when names is
// empty). env.Cluster may be nil when there is no cluster to look at; a
// cluster that does not answer is a warning, and GitLab's side is still
// reported.
func Status(ctx context.Context, env Env, project gitlab.ProjectRef, names []string) ([]*AgentStatus, error) {
	var unreachable error
	if env.Cluster != nil {
		if unreachable = env.Cluster.Reachable(ctx); unreachable != nil {
			if ctx.Err() != nil {
				return nil, unreachable
			}
			env.Cluster = nil
		}
	}
	kas, err := env.GitLab.DiscoverKAS(ctx)
	if err != nil {
		return nil, err
	}
	var agents []*gitlab.Agent
	if len(names) == 0 {
		if agents, err = env.GitLab.ListAgents(ctx, project); err != nil {
			return nil, err
		}
	}
	for _, n := range names {
		a, err := env.GitLab.FindAgent(ctx, project, gitlab.AgentRef{Name: n})
		if err != nil {
			return nil, err
		}
		agents = append(agents, a)
	}
	var out []*AgentStatus
	for _, a := range agents {
		s := &AgentStatus{Agent: a, KAS: kas}
		if s.Tokens, err = env.GitLab.ListTokensWithLastUse(ctx, project, a); err != nil {
			return nil, err
		}
		if s.Receptive, err = receptiveOf(ctx, env.GitLab, project, a); err != nil {
			return nil, err
		}
		if env.Cluster != nil {
			if s.Cluster, err = clusterState(ctx, env.Cluster, a.Name); err != nil {
				return nil, err
			}
		}
		s.judge(unreachable)
		out = append(out, s)
	}
	return out, nil
}

func clusterState(ctx context.Context, c Cluster, name string) (*ClusterState, error) {
	ds, err := c.FindDeployments(ctx, manifest.Selector(manifest.Input{Name: name}))
	if err != nil {
		return nil, fmt.Errorf("finding agent %q in the cluster: %w", name, err)
	}
	if len(ds) == 0 {
		return nil, nil
	}
	return stateOf(ds[0]), nil
}

// stateOf is the agent's Deployment d as status shows it.
func stateOf(d *appsv1.Deployment) *ClusterState {
	r, run := kube.Rollout(d), RunningOf(d)
	return &ClusterState{Namespace: d.Namespace, Deployment: d.Name, Desired: r.Desired, Ready: r.Ready, Available: r.Available,
		Image: run.Image, Version: run.Version, KasAddress: run.KasAddress}
}

// ClusterStatus reports on agents from the cluster alone, for when GitLab
// cannot be asked (why says why: a CI job's token, no credential): the
// named agents, or every agent installed in the cluster. The verdict is
// Installed or NotInstalled; the connection is GitLab's to tell.
func ClusterStatus(ctx context.Context, c Cluster, names []string, why string) ([]*AgentStatus, error) {
	if err := c.Reachable(ctx); err != nil {
		return nil, err
	}
	var out []*AgentStatus
	if len(names) == 0 {
		// Every agent installed: one list, the first Deployment of each.
		ds, err := c.FindDeployments(ctx, manifest.AllAgents)
		if err != nil {
			return nil, fmt.Errorf("finding the agents in the cluster: %w", err)
		}
		seen := map[string]bool{}
		for _, d := range ds {
			if n := manifest.InstanceOf(d.Labels); n != "" && !seen[n] {
				seen[n] = true
				out = append(out, &AgentStatus{Agent: &gitlab.Agent{Name: n}, Cluster: stateOf(d), Verdict: Installed, GitLabNotAsked: why})
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Agent.Name < out[j].Agent.Name })
		return out, nil
	}
	for _, n := range names {
		s := &AgentStatus{Agent: &gitlab.Agent{Name: n}, Verdict: NotInstalled, GitLabNotAsked: why}
		var err error
		if s.Cluster, err = clusterState(ctx, c, n); err != nil {
			return nil, err
		}
		if s.Cluster != nil {
			s.Verdict = Installed
		}
		out = append(out, s)
	}
	return out, nil
}

// judge sets the verdict and warnings; unreachable is why the cluster could
// not be looked at, if it could not.
func (s *AgentStatus) judge(unreachable error) {
	used := false
	for _, t := range s.Tokens {
		if t.LastUsedAt != nil && time.Since(*t.LastUsedAt) < recentUse {
			used = true
		}
	}
	switch {
	case unreachable != nil:
		// GitLab's side alone: connected or not, wherever it runs.
		s.Verdict = NotConnected
		if used {
			s.Verdict = Connected
		}
		s.Warnings = append(s.Warnings, "the cluster was not looked at: "+unreachable.Error())
	case s.Cluster == nil && used:
		// Running in a cluster this kubeconfig does not reach.
		s.Verdict = Connected
		s.Warnings = append(s.Warnings, "the agent connects from a cluster other than the current kubeconfig context")
	case s.Cluster == nil:
		s.Verdict = NotInstalled
	case used && s.Cluster.Available > 0:
		s.Verdict = Connected
	default:
		s.Verdict = NotConnected
	}
	if s.Cluster != nil && s.KAS != nil {
		if w := SkewWarning(s.Cluster.Version, s.KAS.Version); w != "" {
			s.Warnings = append(s.Warnings, w)
		}
	}
}

// SkewWarning says when agentk's version is outside what GitLab supports:
// KAS's minor version, or the minor version just before or after it (15.11
// is the one before 16.0).
func SkewWarning(agentk, kasVersion string) string {
	d, ok := Skew(agentk, kasVersion)
	if !ok {
		return ""
	}
	switch {
	case d > 1:
		return fmt.Sprintf(versionAheadWarn, agentk, kasVersion)
	case d < -1:
		return fmt.Sprintf(versionSkewWarn, agentk, kasVersion)
	}
	return ""
}

// Skew is how many minor versions (in GitLab's release order) agentk is
// ahead of KAS, negative when behind; false when either version does not
// parse, and nothing can be said.
func Skew(agentk, kasVersion string) (int, bool) {
	a, okA := parseVersion(agentk)
	k, okK := parseVersion(kasVersion)
	if !okA || !okK {
		return 0, false
	}
	return minorIndex(a) - minorIndex(k), true
}

// lastMinor is the last minor version of each GitLab major version that
// has ended; later ones are taken to end at .11, as 15 to 17 did.
var lastMinor = map[int]int{12: 10, 13: 12, 14: 10, 15: 11, 16: 11, 17: 11}

// minorIndex numbers GitLab's minor versions in release order across major
// versions (from 12.0), so that 16.11 and 17.0 are one apart.
func minorIndex(v [3]int) int {
	n := 0
	for m := 12; m < v[0]; m++ {
		last, ok := lastMinor[m]
		if !ok {
			last = 11
		}
		n += last + 1
	}
	return n + v[1]
}

func parseVersion(v string) ([3]int, bool) {
	var out [3]int
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return out, false
		}
		out[i] = n
	}
	return out, true
}
