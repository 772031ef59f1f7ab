// Command bootstrapbench times `kubectl gitlab-agent bootstrap` on the test
// control plane with real Flux (source-controller and kustomize-controller
// v1.9.6 as local processes) and the git-backed fake GitLab: from the
// command to the agent connected, and where the time goes (the commit,
// Flux's fetch, Flux's apply, the rollout, the connection), for a new agent,
// a re-run with nothing new, and an upgrade by re-run.
//
//	go run ./test/bench/bootstrapbench [-runs 3]
//
// agentk cannot connect from kwok's pods: as in the end-to-end tests, a
// ready agent pod's token is marked used in the fake GitLab (polled every
// 200 ms, so the connection phase includes up to that).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/bench/benchenv"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/cluster"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

func main() {
	runs := flag.Int("runs", 3, "agents bootstrapped (each: new, re-run, upgrade)")
	flag.Parse()
	if err := run(*runs); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

type phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration"`
}

func run(runs int) error {
	ctx := context.Background()
	env, err := benchenv.Start(ctx, "bootstrapbench", "")
	if err != nil {
		return err
	}
	defer env.Close()
	fmt.Fprintln(os.Stderr, "starting Flux...")
	t := time.Now()
	if _, err := env.Cluster.StartFlux(ctx, cluster.FluxOptions{Log: os.Stderr}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "Flux is up in %s\n", time.Since(t).Round(time.Millisecond))
	gl := fakegitlab.New()
	defer gl.Close()
	p := gl.AddProject("infra/fleet")
	gl.SetFile(p, "main", "README.md", []byte("# fleet\n"))
	_, token := gl.AddMember(p, "maria", fakegitlab.Maintainer)
	stop := simulateAgentk(env.Cluster, gl)
	defer stop()

	type row struct {
		what   string
		total  time.Duration
		phases []phase
	}
	var rows []row
	for i := 1; i <= runs; i++ {
		name := fmt.Sprintf("bench-%d", i)
		for _, c := range []struct {
			what string
			args []string
		}{
			{"new agent", nil},
			{"re-run, nothing new", nil},
			{"upgrade (agentk v17.3.0)", []string{"--agent-version", "17.3.0"}},
		} {
			args := append([]string{"bootstrap", name, "--project", "infra/fleet", "--no-environment", "-o", "json"}, c.args...)
			cmd := exec.CommandContext(ctx, env.Plugin, args...)
			cmd.Env = env.Environ("GITLAB_URL="+gl.URL, "GITLAB_TOKEN="+token)
			var errOut strings.Builder
			cmd.Stderr = &errOut
			start := time.Now()
			out, err := cmd.Output()
			took := time.Since(start)
			if err != nil {
				return fmt.Errorf("%s %s: %v\n%s", name, c.what, err, errOut.String())
			}
			var res struct {
				Phases []phase `json:"phases"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				return fmt.Errorf("reading bootstrap's JSON: %w", err)
			}
			rows = append(rows, row{c.what, took, res.Phases})
		}
	}
	fmt.Printf("bootstrap on the test cluster with Flux v1.9.6 controllers, %d agents (each row one run)\n\n", runs)
	fmt.Printf("%-26s %9s  %s\n", "RUN", "TOTAL", "WHERE THE TIME GOES")
	for _, r := range rows {
		var parts []string
		for _, ph := range r.phases {
			if ph.Duration >= 50*time.Millisecond {
				parts = append(parts, fmt.Sprintf("%s %s", ph.Name, ph.Duration.Round(10*time.Millisecond)))
			}
		}
		fmt.Printf("%-26s %9s  %s\n", r.what, r.total.Round(10*time.Millisecond), strings.Join(parts, ", "))
	}
	var news []time.Duration
	for _, r := range rows {
		if r.what == "new agent" {
			news = append(news, r.total)
		}
	}
	sort.Slice(news, func(i, j int) bool { return news[i] < news[j] })
	fmt.Printf("\nnew agent, median: %s (phases under 50 ms not shown)\n", news[len(news)/2].Round(10*time.Millisecond))
	return nil
}

// simulateAgentk marks the token of every ready agent pod used, as agentk's
// connection would (kwok's pods run nothing).
func simulateAgentk(c *cluster.Cluster, gl *fakegitlab.Server) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	cs, err := cluster.NewClients(c.RESTConfig())
	if err != nil {
		panic(err)
	}
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=gitlab-agent"})
			if err == nil {
				for _, p := range pods.Items {
					if p.DeletionTimestamp != nil || !ready(p) {
						continue
					}
					for _, v := range p.Spec.Volumes {
						if v.Secret == nil || v.Name != "secret-volume" {
							continue
						}
						if s, err := cs.CoreV1().Secrets(p.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{}); err == nil {
							gl.MarkTokenUsed(strings.TrimSpace(string(s.Data["token"])), time.Now())
						}
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); <-done }
}

func ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
