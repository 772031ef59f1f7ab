// Command diffbench times `kubectl gitlab-agent diff` against `kubectl diff
// --server-side` on the same objects in the same run, on the test control
// plane, and checks that both find the same changed objects.
//
//	go run ./test/bench/diffbench [-namespaces 10] [-per-kind 50] [-runs 3]
//
// Data: N namespaces, each with M ConfigMaps and M Deployments (1 replica),
// applied server-side with the field manager kubectl-gitlab-agent (as an
// install would); then 10% of the ConfigMaps change in the manifests. Both
// tools predict that same field manager's apply.
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
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/plugin"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/cluster"
)

func main() {
	namespaces := flag.Int("namespaces", 10, "namespaces")
	perKind := flag.Int("per-kind", 50, "ConfigMaps and Deployments per namespace")
	runs := flag.Int("runs", 3, "runs of each tool (the median is reported)")
	concurrency := flag.Int("concurrency", 16, "our --concurrency")
	flag.Parse()
	if err := run(*namespaces, *perKind, *runs, *concurrency); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(namespaces, perKind, runs, concurrency int) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "diffbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, err := plugin.Build(ctx, tmp, "")
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "starting the test control plane...")
	c, err := cluster.Start(ctx, cluster.Options{Log: os.Stderr})
	if err != nil {
		return err
	}
	defer c.Stop()
	env := append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "HOME="+tmp, "NO_COLOR=1")

	dir := filepath.Join(tmp, "manifests")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	total := namespaces * (1 + 2*perKind)
	fmt.Fprintf(os.Stderr, "applying %d objects (%d namespaces × (%d ConfigMaps + %d Deployments) + the namespaces)...\n", total, namespaces, perKind, perKind)
	start := time.Now()
	for ns := 0; ns < namespaces; ns++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("ns-%03d.yaml", ns)), objects(ns, perKind, false), 0o644); err != nil {
			return err
		}
	}
	if _, err := runTool(env, "kubectl", "apply", "--server-side", "--field-manager=kubectl-gitlab-agent", "-f", dir); err != nil {
		return fmt.Errorf("applying the data: %w", err)
	}
	// kubectl diff compares status too: let the Deployments settle so that
	// a status update mid-run does not show as a difference.
	for ns := 0; ns < namespaces; ns++ {
		if _, err := runTool(env, "kubectl", "wait", "--for=condition=Available", "--timeout=10m", "deployment", "--all", "-n", fmt.Sprintf("bench-%03d", ns)); err != nil {
			return fmt.Errorf("waiting for the Deployments: %w", err)
		}
	}
	fmt.Fprintf(os.Stderr, "applied and rolled out in %s; changing 10%% of the ConfigMaps in the manifests\n", time.Since(start).Round(time.Second))
	for ns := 0; ns < namespaces; ns++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("ns-%03d.yaml", ns)), objects(ns, perKind, true), 0o644); err != nil {
			return err
		}
	}

	kubectlArgs := []string{"diff", "--server-side", "--field-manager=kubectl-gitlab-agent", "--force-conflicts", "-f", dir}
	oursArgs := []string{"diff", "-f", dir, "-o", "json", fmt.Sprintf("--concurrency=%d", concurrency)}
	var theirs, ours []measure
	for i := 0; i < runs; i++ {
		m, err := runTool(env, "kubectl", kubectlArgs...)
		if err != nil {
			return err
		}
		theirs = append(theirs, m)
		m, err = runTool(env, bin, oursArgs...)
		if err != nil {
			return err
		}
		ours = append(ours, m)
	}
	if os.Getenv("DIFFBENCH_GCTRACE") != "" {
		m, err := runTool(append(env, "GODEBUG=gctrace=1"), bin, oursArgs...)
		if err != nil {
			return err
		}
		fmt.Fprint(os.Stderr, m.stderr)
	}
	theirSet, ourSet := kubectlChanged(theirs[0].stdout), ourChanged(ours[0].stdout)
	t, o := median(theirs), median(ours)
	fmt.Printf("diff of %d objects, %d changed in the manifests; median of %d runs each, same cluster, same run\n", total, namespaces*perKind/10, runs)
	fmt.Printf("%-44s %10s %10s %10s %6s %8s\n", "tool", "wall", "peak RSS", "peak anon", "exit", "changed")
	row := func(name string, m measure, changed int) {
		fmt.Printf("%-44s %10s %8.0fMB %8.0fMB %6d %8d\n", name, m.wall.Round(time.Millisecond), float64(m.maxRSS)/1024, float64(m.maxAnon)/1024, m.exit, changed)
	}
	row("kubectl diff --server-side", t, len(theirSet))
	row(fmt.Sprintf("kubectl gitlab-agent diff (--concurrency %d)", concurrency), o, len(ourSet))
	fmt.Printf("speed-up: %.1f×; peak RSS %.2f× and peak anonymous memory %.2f× kubectl's; same changed objects: %v\n",
		float64(t.wall)/float64(o.wall), float64(o.maxRSS)/float64(t.maxRSS), float64(o.maxAnon)/float64(t.maxAnon), equal(theirSet, ourSet))
	if !equal(theirSet, ourSet) {
		return fmt.Errorf("the verdicts differ:\nkubectl: %v\nours:    %v", theirSet, ourSet)
	}
	return nil
}

// objects is one namespace's manifests; with changed, every tenth ConfigMap
// has a new value.
func objects(ns, perKind int, changed bool) []byte {
	var b bytes.Buffer
	name := fmt.Sprintf("bench-%03d", ns)
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", name)
	for i := 0; i < perKind; i++ {
		v := "v1"
		if changed && i%10 == 0 {
			v = "v2"
		}
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%03d\n  namespace: %s\n  labels: {app: bench}\ndata:\n  key: %q\n  config.yaml: |\n    server:\n      port: 8080\n      mode: %s\n", i, name, v, v)
	}
	for i := 0; i < perKind; i++ {
		fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-%03d
  namespace: %s
  labels: {app: bench}
spec:
  replicas: 1
  selector:
    matchLabels: {app: bench, idx: "%03d"}
  template:
    metadata:
      labels: {app: bench, idx: "%03d"}
    spec:
      containers:
      - name: app
        image: example.invalid/app:1.0
        ports: [{containerPort: 8080}]
        resources: {requests: {cpu: 10m, memory: 16Mi}}
`, i, name, i, i)
	}
	return b.Bytes()
}

type measure struct {
	wall    time.Duration
	maxRSS  int64 // KiB, all resident pages (the binary's mapped file pages too)
	maxAnon int64 // KiB, anonymous pages (heap, stacks) sampled every 2ms
	exit    int
	stdout  string
	stderr  string
}

func runTool(env []string, name string, args ...string) (measure, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return measure{}, err
	}
	var maxAnon int64
	done := make(chan struct{})
	go func() {
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		for {
			if b, err := os.ReadFile(status); err == nil {
				if m := rssAnonRE.FindSubmatch(b); m != nil {
					if kb, _ := strconv.ParseInt(string(m[1]), 10, 64); kb > maxAnon {
						maxAnon = kb
					}
				}
			}
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	m := measure{wall: time.Since(start), stdout: out.String(), stderr: errOut.String(), maxAnon: maxAnon}
	if cmd.ProcessState != nil {
		m.exit = cmd.ProcessState.ExitCode()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			m.maxRSS = ru.Maxrss
		}
	}
	if m.exit > 1 || (err != nil && cmd.ProcessState == nil) {
		return m, fmt.Errorf("%s %s: exit %d: %v\n%s", name, strings.Join(args, " "), m.exit, err, errOut.String())
	}
	return m, nil
}

var rssAnonRE = regexp.MustCompile(`RssAnon:\s+(\d+) kB`)

func median(ms []measure) measure {
	s := append([]measure(nil), ms...)
	sort.Slice(s, func(i, j int) bool { return s[i].wall < s[j].wall })
	return s[len(s)/2]
}

// kubectl diff names each differing object in its "diff -u -N" line as
// <dir>/<group>.<version>.<Kind>.<namespace>.<name>.
var kubectlFileRE = regexp.MustCompile(`(?m)^diff -u -N \S+/(\S+) \S+$`)

func kubectlChanged(out string) []string {
	var set []string
	for _, m := range kubectlFileRE.FindAllStringSubmatch(out, -1) {
		parts := strings.Split(m[1], ".")
		n := len(parts)
		set = append(set, parts[n-3]+"/"+parts[n-2]+"/"+parts[n-1])
	}
	sort.Strings(set)
	return set
}

func ourChanged(out string) []string {
	var doc struct {
		Objects []struct {
			Kind, Namespace, Name, Action string
		} `json:"objects"`
	}
	_ = json.Unmarshal([]byte(out), &doc)
	var set []string
	for _, o := range doc.Objects {
		if o.Action != "unchanged" {
			set = append(set, o.Kind+"/"+o.Namespace+"/"+o.Name)
		}
	}
	sort.Strings(set)
	return set
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }
