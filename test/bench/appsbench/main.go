// Command appsbench times `kubectl gitlab-agent apps diff` beside `flux diff
// kustomization` (the flux CLI v2.9.5, built from the module proxy, given a
// checkout of the same revision with --path) on one Kustomization of N
// objects that Flux's real controllers applied on the test control plane,
// in one run, and checks that both give the same verdict; then times
// `apps list -A` over M applications of K objects each.
//
//	go run ./test/bench/appsbench [-objects 1000] [-apps 20] [-per-app 50] [-runs 3]
//
// Rows: the Kustomization as Flux left it (no difference), then with 10% of
// its ConfigMaps edited by another field manager (drift: both must say so).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/bench/benchenv"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/cluster"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

func main() {
	objects := flag.Int("objects", 1000, "objects of the big Kustomization (half ConfigMaps, half Deployments)")
	nApps := flag.Int("apps", 20, "applications for apps list -A")
	perApp := flag.Int("per-app", 50, "objects per application for apps list -A")
	runs := flag.Int("runs", 3, "runs of each tool (the median is reported)")
	flag.StringVar(&profile, "profile", "", "write a CPU profile of one more apps list -A (compared) to FILE")
	flag.Parse()
	if err := run(*objects, *nApps, *perApp, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

var profile string

type bench struct {
	env     *benchenv.Env
	gl      *fakegitlab.Server
	project *fakegitlab.Project
	client  *gitlab.Client
	token   string
	kubectl string
	flux    string
}

func run(objects, nApps, perApp, runs int) error {
	ctx := context.Background()
	env, err := benchenv.Start(ctx, "appsbench", "")
	if err != nil {
		return err
	}
	defer env.Close()
	fluxCLI, err := cluster.EnsureFluxCLI(ctx, os.Stderr)
	if err != nil {
		return fmt.Errorf("building the flux CLI: %w", err)
	}
	if _, err := env.Cluster.StartFlux(ctx, cluster.FluxOptions{Log: os.Stderr}); err != nil {
		return err
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		return err
	}
	b := &bench{env: env, gl: fakegitlab.New(), kubectl: kubectl, flux: fluxCLI}
	defer b.gl.Close()
	b.project = b.gl.AddProject("infra/fleet")
	_, b.token = b.gl.AddMember(b.project, "maria", fakegitlab.Maintainer)
	if b.client, err = gitlab.New(gitlab.Options{URL: b.gl.URL, Credentials: gitlab.Credentials{Token: b.token}}); err != nil {
		return err
	}
	b.gl.SetFile(b.project, "main", "README.md", []byte("# fleet\n"))

	if objects > 0 {
		if err := b.big(ctx, objects, runs); err != nil {
			return err
		}
	}
	if nApps > 0 {
		return b.list(ctx, nApps, perApp, runs, objects > 0)
	}
	return nil
}

// big times apps diff beside flux diff on one Kustomization of n objects.
func (b *bench) big(ctx context.Context, objects, runs int) error {
	env := b.env
	fmt.Fprintf(os.Stderr, "committing and applying %d objects...\n", objects)
	if err := b.commit(ctx, "apps/big", objects, "big"); err != nil {
		return err
	}
	if err := b.app(ctx, "bench-big", "big", "apps/big"); err != nil {
		return err
	}
	checkout := filepath.Join(env.Dir, "checkout")
	if out, err := exec.CommandContext(ctx, "git", "clone", "-q", b.gl.RepoDir(b.project.ID), checkout).CombinedOutput(); err != nil {
		return fmt.Errorf("git clone: %v: %s", err, out)
	}
	fmt.Printf("apps diff beside flux diff kustomization, one Kustomization of %d objects applied by Flux v1.9.6 (median of %d runs)\n\n", objects, runs)
	fmt.Printf("%-34s %10s %10s %7s  %s\n", "CASE", "OURS", "FLUX", "RATIO", "VERDICT (exit codes ours/flux)")
	for _, c := range []string{"as Flux applied it", "10% of ConfigMaps edited"} {
		if strings.HasPrefix(c, "10%") {
			if err := b.drift(ctx, "bench-big", objects/2/10); err != nil {
				return err
			}
		}
		ours, oc, err := b.time(ctx, runs, env.Plugin, "apps", "diff", "big", "-n", "bench-big", "-o", "summary")
		if err != nil {
			return err
		}
		theirs, fc, err := b.time(ctx, runs, b.flux, "diff", "kustomization", "big", "-n", "bench-big", "--path", filepath.Join(checkout, "apps/big"), "--progress-bar=false")
		if err != nil {
			return err
		}
		same := "same"
		if oc != fc {
			same = "DIFFERENT"
		}
		fmt.Printf("%-34s %10s %10s %7.2f  %s (%d/%d)\n", c, ours.Round(time.Millisecond), theirs.Round(time.Millisecond), float64(ours)/float64(theirs), same, oc, fc)
	}

	return nil
}

// list times apps list -A over n applications of perApp objects each.
func (b *bench) list(ctx context.Context, nApps, perApp, runs int, withBig bool) error {
	env := b.env
	fmt.Fprintf(os.Stderr, "committing and applying %d applications of %d objects...\n", nApps, perApp)
	for i := 0; i < nApps; i++ {
		name := fmt.Sprintf("app%02d", i)
		if err := b.commit(ctx, "apps/"+name, perApp, name); err != nil {
			return err
		}
	}
	for i := 0; i < nApps; i++ {
		name := fmt.Sprintf("app%02d", i)
		if err := b.app(ctx, "bench-"+name, name, "apps/"+name); err != nil {
			return err
		}
	}
	list, code, err := b.time(ctx, runs, env.Plugin, "apps", "list", "-A", "-o", "json")
	if err != nil || code != 0 {
		return fmt.Errorf("apps list: exit %d: %v", code, err)
	}
	if profile != "" {
		c := exec.CommandContext(ctx, env.Plugin, "apps", "list", "-A", "-o", "json")
		c.Env = b.env.Environ("GITLAB_URL="+b.gl.URL, "GITLAB_TOKEN="+b.token, "KUBECTL_GITLAB_AGENT_CPUPROFILE="+profile)
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("profiled apps list: %v: %s", err, out)
		}
	}
	noDiff, _, err := b.time(ctx, runs, env.Plugin, "apps", "list", "-A", "--no-diff", "-o", "json")
	if err != nil {
		return err
	}
	total, also := nApps, ""
	if withBig {
		total, also = nApps+1, ", and the big one"
	}
	fmt.Printf("\napps list -A over %d applications (%d Kustomizations of %d objects%s): %s with every app compared, %s with --no-diff (median of %d runs)\n",
		total, nApps, perApp, also, list.Round(time.Millisecond), noDiff.Round(time.Millisecond), runs)
	return nil
}

// commit puts n objects (half ConfigMaps, half Deployments) under dir in
// one commit.
func (b *bench) commit(ctx context.Context, dir string, n int, prefix string) error {
	var actions []gitlab.CommitAction
	for i := 0; i < n/2; i++ {
		cm := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-cm-%04d\ndata:\n  key: value-%d\n  other: some text\n", prefix, i, i)
		dep := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s-dep-%04[2]d
spec:
  replicas: 1
  selector:
    matchLabels: {app: %[1]s-dep-%04[2]d}
  template:
    metadata:
      labels: {app: %[1]s-dep-%04[2]d}
    spec:
      containers:
      - name: c
        image: registry.example.com/app:1.%[2]d
        resources: {requests: {cpu: 10m, memory: 16Mi}}
`, prefix, i)
		actions = append(actions,
			gitlab.CommitAction{Action: "create", Path: fmt.Sprintf("%s/cm-%04d.yaml", dir, i), Content: []byte(cm)},
			gitlab.CommitAction{Action: "create", Path: fmt.Sprintf("%s/dep-%04d.yaml", dir, i), Content: []byte(dep)})
	}
	_, err := b.client.CreateCommit(ctx, gitlab.ProjectRef{Path: "infra/fleet"}, gitlab.CommitOptions{Branch: "main", Message: "Add " + dir, Actions: actions})
	return err
}

// app makes a namespace's GitRepository and Kustomization of dir and waits
// until Flux applied it.
func (b *bench) app(ctx context.Context, ns, name, dir string) error {
	dt := b.gl.AddDeployToken(b.project, "flux-"+name, []string{"read_repository"}, nil)
	objs := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: v1
kind: Secret
metadata: {name: auth, namespace: %[1]s}
stringData: {username: %[2]q, password: %[3]q}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: %[4]s, namespace: %[1]s}
spec: {url: %[5]q, interval: 1h, ref: {branch: main}, secretRef: {name: auth}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: %[4]s, namespace: %[1]s}
spec: {path: ./%[6]s, interval: 1h, prune: true, targetNamespace: %[1]s, sourceRef: {kind: GitRepository, name: %[4]s}}
`, ns, dt.Username, dt.Token, name, b.gl.URL+"/infra/fleet.git", dir)
	if _, err := b.cmd(ctx, objs, b.kubectl, "apply", "-f", "-"); err != nil {
		return err
	}
	out, err := b.cmd(ctx, "", b.env.Plugin, "apps", "reconcile", name, "-n", ns, "--with-source", "--timeout", "10m")
	if err != nil {
		return fmt.Errorf("waiting for Flux to apply %s/%s: %v: %s", ns, name, err, out)
	}
	return nil
}

// drift edits n ConfigMaps of ns with kubectl (another field manager).
func (b *bench) drift(ctx context.Context, ns string, n int) error {
	for i := 0; i < n; i++ {
		if _, err := b.cmd(ctx, "", b.kubectl, "patch", "configmap", fmt.Sprintf("big-cm-%04d", i*10), "-n", ns, "--type", "merge", "-p", `{"data":{"key":"edited"}}`); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) cmd(ctx context.Context, stdin, name string, args ...string) (string, error) {
	c := exec.CommandContext(ctx, name, args...)
	c.Env = b.env.Environ("GITLAB_URL="+b.gl.URL, "GITLAB_TOKEN="+b.token)
	c.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return out.String(), err
}

// time runs a command runs times; the median wall time and its exit code
// (0 or 1 are verdicts; anything else is an error).
func (b *bench) time(ctx context.Context, runs int, name string, args ...string) (time.Duration, int, error) {
	var times []time.Duration
	code := 0
	for i := 0; i < runs; i++ {
		c := exec.CommandContext(ctx, name, args...)
		c.Env = b.env.Environ("GITLAB_URL="+b.gl.URL, "GITLAB_TOKEN="+b.token)
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		start := time.Now()
		err := c.Run()
		times = append(times, time.Since(start))
		code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			return 0, 0, err
		}
		if code > 1 {
			return 0, code, fmt.Errorf("%s %s: exit %d: %s", filepath.Base(name), strings.Join(args, " "), code, out.String())
		}
		if i == 0 && strings.Contains(strings.Join(args, " "), "list") {
			var doc struct{ Apps []json.RawMessage }
			_ = json.Unmarshal(out.Bytes(), &doc)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	return times[len(times)/2], code, nil
}
