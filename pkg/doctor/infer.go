package doctor

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// NameError says why doctor was not told which agent, and which it could
// be: a usage error.
type NameError struct{ Msg string }

func (e *NameError) Error() string { return e.Msg }

// Infer names the agent to diagnose when the user did not: the only agent
// whose Deployment runs in the cluster, else the project's only agent.
// Several candidates, or none, is a NameError that lists them.
// Each of the two asks has its own bound: a cluster that hangs leaves the
// GitLab ask its time.
func Infer(ctx context.Context, env Env) (string, error) {
	if env.Cluster != nil {
		cctx, cancel := context.WithTimeout(ctx, timeoutOf(env))
		ds, err := env.Cluster.FindDeployments(cctx, manifest.AllAgents)
		cancel()
		if err == nil {
			names := map[string]bool{}
			for _, d := range ds {
				if n := manifest.InstanceOf(d.Labels); n != "" {
					names[n] = true
				}
			}
			switch list := sorted(names); len(list) {
			case 1:
				return list[0], nil
			case 0:
			default:
				return "", &NameError{fmt.Sprintf("several agents run in this cluster (%s): name one, e.g. doctor %s", strings.Join(list, ", "), list[0])}
			}
		}
	}
	if env.GitLab != nil && env.NoProject == nil {
		gctx, cancel := context.WithTimeout(ctx, timeoutOf(env))
		agents, err := env.GitLab.ListAgents(gctx, env.Project)
		cancel()
		if err == nil {
			names := map[string]bool{}
			for _, a := range agents {
				names[a.Name] = true
			}
			switch list := sorted(names); len(list) {
			case 1:
				return list[0], nil
			case 0:
				return "", &NameError{fmt.Sprintf("no agent runs in this cluster and %s has none: name the agent (doctor NAME)", env.Project)}
			default:
				return "", &NameError{fmt.Sprintf("no agent runs in this cluster and %s has several (%s): name one", env.Project, strings.Join(list, ", "))}
			}
		}
	}
	return "", &NameError{"no agent runs in this cluster (or it cannot be read) and the project's agents cannot be listed: name the agent (doctor NAME)"}
}

func sorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func timeoutOf(env Env) time.Duration {
	if env.Timeout <= 0 {
		return defaultTimeout
	}
	return env.Timeout
}
