package doctor

import (
	"context"
	"fmt"
	"slices"
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
		if list, err := within(ctx, env, runningAgents); err == nil {
			switch len(list) {
			case 1:
				return list[0], nil
			case 0:
			default:
				return "", &NameError{fmt.Sprintf("several agents run in this cluster (%s): name one, e.g. doctor %s", strings.Join(list, ", "), list[0])}
			}
		}
	}
	if env.GitLab != nil && env.NoProject == nil {
		if list, err := within(ctx, env, registeredAgents); err == nil {
			switch len(list) {
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

// within asks with a time bound of its own.
func within(ctx context.Context, env Env, ask func(context.Context, Env) ([]string, error)) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeoutOf(env))
	defer cancel()
	return ask(ctx, env)
}

// runningAgents are the names of the agents whose Deployments the cluster
// runs, sorted.
func runningAgents(ctx context.Context, env Env) ([]string, error) {
	ds, err := env.Cluster.FindDeployments(ctx, manifest.AllAgents)
	var names []string
	for _, d := range ds {
		if n := manifest.InstanceOf(d.Labels); n != "" {
			names = append(names, n)
		}
	}
	return distinct(names), err
}

// registeredAgents are the names of the project's agents, sorted.
func registeredAgents(ctx context.Context, env Env) ([]string, error) {
	agents, err := env.GitLab.ListAgents(ctx, env.Project)
	var names []string
	for _, a := range agents {
		names = append(names, a.Name)
	}
	return distinct(names), err
}

func distinct(names []string) []string {
	slices.Sort(names)
	return slices.Compact(names)
}

func timeoutOf(env Env) time.Duration {
	if env.Timeout <= 0 {
		return defaultTimeout
	}
	return env.Timeout
}
