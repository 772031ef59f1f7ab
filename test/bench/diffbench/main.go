// Command diffbench times `kubectl gitlab-agent diff` beside `kubectl diff
// --server-side` (same field manager, --force-conflicts) and beside the floor
// of reading the same objects (one LIST per kind, `kubectl get cm,deploy -A
// -o json -l ...`), on the test control plane, in one run, and checks that
// both diffs find the same changed objects.
//
//	go run ./test/bench/diffbench [-namespaces 10] [-per-kind 50] [-runs 3]
//
// Data, once per seeding: N namespaces, each with M ConfigMaps and M
// Deployments (1 replica), then 10% of the ConfigMaps change in the
// manifests. The seedings are how users' clusters look: objects last applied
//   - by the plugin's own field manager (kubectl apply --server-side
//     --field-manager=kubectl-gitlab-agent, as an install does),
//   - by kubectl apply --server-side (manager kubectl, as CI jobs do),
//   - by client-side kubectl apply (the last-applied annotation).
//
// Every row is printed; the goal of issue 12 is each row at most 0.10 of
// kubectl's wall time and at most 2x the LIST floor.
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

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/bench/benchenv"
)

func main() {
	namespaces := flag.Int("namespaces", 10, "namespaces per seeding")
	perKind := flag.Int("per-kind", 50, "ConfigMaps and Deployments per namespace")
	runs := flag.Int("runs", 3, "runs of each tool per seeding (the median is reported)")
	concurrency := flag.Int("concurrency", 16, "our --concurrency")
	only := flag.String("seedings", "own,ssa,csa", "which seedings to run, comma-separated")
	flag.StringVar(&profileDir, "profile", "", "also write a CPU profile of one more run of ours per seeding into DIR")
	flag.Var(&oursEnv, "ours-env", "KEY=VALUE in our environment only (repeatable), e.g. GOGC=50")
	flag.StringVar(&oursRef, "ours-ref", "", "measure the plugin as built at this git ref instead of the working tree")
	flag.Parse()
	if err := run(*namespaces, *perKind, *runs, *concurrency, strings.Split(*only, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

var (
	profileDir string
	oursEnv    envList
	oursRef    string
)

type envList []string

func (e *envList) String() string     { return strings.Join(*e, ",") }
func (e *envList) Set(v string) error { *e = append(*e, v); return nil }

// seeding is how the objects were last applied before the diff.
type seeding struct {
	key, name string
	apply     []string // kubectl's arguments before -f DIR
}

var seedings = []seeding{
	{"own", "the plugin's own field manager", []string{"apply", "--server-side", "--field-manager=kubectl-gitlab-agent"}},
	{"ssa", "kubectl apply --server-side (manager kubectl)", []string{"apply", "--server-side"}},
	{"csa", "client-side kubectl apply", []string{"apply"}},
}

// row is one seeding's figures.
type row struct {
	seeding              seeding
	ours, kubectl, floor measure
	same                 bool
	changed              int
}

func run(namespaces, perKind, runs, concurrency int, only []string) error {
	ctx := context.Background()
	e, err := benchenv.Start(ctx, "diffbench", oursRef)
	if err != nil {
		return err
	}
	defer e.Close()
	tmp, bin := e.Dir, e.Plugin
	if oursRef != "" {
		bin = e.AtRef
	}
	env := e.Environ()
	total := namespaces * (1 + 2*perKind)

	var rows []row
	for _, sd := range seedings {
		if !contains(only, sd.key) {
			continue
		}
		dir := filepath.Join(tmp, "manifests-"+sd.key)
		if err := seed(env, dir, sd, namespaces, perKind); err != nil {
			return err
		}
		kubectlArgs := []string{"diff", "--server-side", "--field-manager=kubectl-gitlab-agent", "--force-conflicts", "-f", dir}
		oursArgs := []string{"diff", "-f", dir, "-o", "json", fmt.Sprintf("--concurrency=%d", concurrency)}
		floorArgs := []string{"get", "configmaps,deployments", "-A", "-o", "json", "-l", "seed=" + sd.key}
		var theirs, ours, floor []measure
		for i := 0; i < runs; i++ { // interleaved, so that load hits all alike
			for _, t := range []struct {
				name string
				args []string
				into *[]measure
			}{{"kubectl", kubectlArgs, &theirs}, {bin, oursArgs, &ours}, {"kubectl", floorArgs, &floor}} {
				e := env
				if t.name == bin {
					e = append(append([]string{}, env...), oursEnv...)
				}
				m, err := runTool(e, t.name, t.args...)
				if err != nil {
					return err
				}
				*t.into = append(*t.into, m)
			}
		}
		if profileDir != "" {
			prof := filepath.Join(profileDir, sd.key+".pprof")
			if _, err := runTool(append(env, "KUBECTL_GITLAB_AGENT_CPUPROFILE="+prof), bin, oursArgs...); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "CPU profile of ours: go tool pprof %s %s\n", bin, prof)
		}
		theirSet, ourSet := kubectlChanged(theirs[0].stdout), ourChanged(ours[0].stdout)
		if !equal(theirSet, ourSet) {
			return fmt.Errorf("seeding %q: the verdicts differ:\nkubectl: %v\nours:    %v", sd.key, theirSet, ourSet)
		}
		rows = append(rows, row{seeding: sd, ours: median(ours), kubectl: median(theirs), floor: median(floor), same: true, changed: len(ourSet)})
	}

	fmt.Printf("diff of %d objects per seeding, %d changed in the manifests; median of %d interleaved runs each; same cluster, same run\n",
		total, namespaces*perKind/10, runs)
	fmt.Printf("%-46s %9s %9s %9s %8s %8s %9s %9s %6s %8s\n", "objects last applied by", "ours", "kubectl", "LIST", "/kubectl", "/LIST", "RSS ours", "RSS kctl", "/kctl", "same")
	for _, r := range rows {
		fmt.Printf("%-46s %9s %9s %9s %8.2f %8.2f %7.0fMB %7.0fMB %6.2f %8v\n", r.seeding.name,
			r.ours.wall.Round(time.Millisecond), r.kubectl.wall.Round(time.Millisecond), r.floor.wall.Round(time.Millisecond),
			ratio(r.ours.wall, r.kubectl.wall), ratio(r.ours.wall, r.floor.wall),
			float64(r.ours.maxRSS)/1024, float64(r.kubectl.maxRSS)/1024, float64(r.ours.maxRSS)/float64(r.kubectl.maxRSS), r.same)
	}
	return nil
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func contains(list []string, s string) bool {
	for _, e := range list {
		if strings.TrimSpace(e) == s {
			return true
		}
	}
	return false
}

// seed applies a seeding's objects as it says, waits until the Deployments
// are available (kubectl diff compares status too), and then writes the
// manifests with 10% of the ConfigMaps changed.
func seed(env []string, dir string, sd seeding, namespaces, perKind int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	write := func(changed bool) error {
		for ns := 0; ns < namespaces; ns++ {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("ns-%03d.yaml", ns)), objects(sd.key, ns, perKind, changed), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	if err := write(false); err != nil {
		return err
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "seeding %q: applying with kubectl %s...\n", sd.key, strings.Join(sd.apply, " "))
	if _, err := runTool(env, "kubectl", append(append([]string{}, sd.apply...), "-f", dir)...); err != nil {
		return fmt.Errorf("applying the data: %w", err)
	}
	for ns := 0; ns < namespaces; ns++ {
		if _, err := runTool(env, "kubectl", "wait", "--for=condition=Available", "--timeout=10m", "deployment", "--all", "-n", nsName(sd.key, ns)); err != nil {
			return fmt.Errorf("waiting for the Deployments: %w", err)
		}
	}
	fmt.Fprintf(os.Stderr, "seeding %q: applied and rolled out in %s\n", sd.key, time.Since(start).Round(time.Second))
	return write(true)
}

func nsName(seed string, ns int) string { return fmt.Sprintf("bench-%s-%03d", seed, ns) }

// objects is one namespace's manifests; with changed, every tenth ConfigMap
// has a new value.
func objects(seed string, ns, perKind int, changed bool) []byte {
	var b bytes.Buffer
	name := nsName(seed, ns)
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", name)
	for i := 0; i < perKind; i++ {
		v := "v1"
		if changed && i%10 == 0 {
			v = "v2"
		}
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%03d\n  namespace: %s\n  labels: {app: bench, seed: %s}\ndata:\n  key: %q\n  config.yaml: |\n    server:\n      port: 8080\n      mode: %s\n", i, name, seed, v, v)
	}
	for i := 0; i < perKind; i++ {
		fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-%03d
  namespace: %s
  labels: {app: bench, seed: %s}
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
`, i, name, seed, i, i)
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
