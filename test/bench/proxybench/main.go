// Command proxybench measures the tunnel on the test control plane, in one
// run: requests per second and latency of small GETs through `kubectl
// gitlab-agent proxy` (which goes through the fake KAS) beside `kubectl
// proxy` (straight to the apiserver), with the direct paths they add to; and
// the wall time of `get-token` with a warm cache.
//
//	go run ./test/bench/proxybench [-duration 3s] [-rounds 3] [-baseline REF]
//
// -baseline builds the plugin as it was at a git ref (say HEAD~5) and sets
// its proxy beside today's on the same fake KAS, measured in the same run;
// rounds are interleaved and each figure is the median of its rounds.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/bench/benchenv"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakekas"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/plugin"
)

func main() {
	duration := flag.Duration("duration", 3*time.Second, "load per measurement")
	rounds := flag.Int("rounds", 3, "measurements per route, interleaved; the median is reported")
	baseline := flag.String("baseline", "", "also measure the plugin built at this git ref")
	flag.Parse()
	if err := run(*duration, *rounds, *baseline); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

const path = "/api/v1/namespaces/default"

func run(d time.Duration, rounds int, baseline string) error {
	ctx := context.Background()
	e, err := benchenv.Start(ctx, "proxybench", baseline)
	if err != nil {
		return err
	}
	defer e.Close()
	tmp, c, bin, baseBin := e.Dir, e.Cluster, e.Plugin, e.AtRef

	g := fakegitlab.New()
	defer g.Close()
	p := g.AddProject("infra/agents")
	u, tok := g.AddMember(p, "bench", fakegitlab.Maintainer)
	a := g.AddAgent(p, "bench", u)
	g.SetFile(p, "main", ".gitlab/agents/bench/config.yaml", []byte("user_access:\n  access_as:\n    agent: {}\n  projects:\n  - id: infra/agents\n"))
	kas, err := fakekas.New(g, c.RESTConfig())
	if err != nil {
		return err
	}
	defer kas.Close()
	g.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalK8sProxyURL = kas.ProxyURL() })
	ca := filepath.Join(tmp, "kas.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kas.Certificate().Raw}), 0o644); err != nil {
		return err
	}
	env := e.Environ("XDG_CACHE_HOME="+filepath.Join(tmp, "cache"), "GITLAB_URL="+g.URL, "GITLAB_TOKEN="+tok)

	ours, err := start(env, bin, "proxy", "bench", "--project", "infra/agents", "--port", "0", "--ca-file", ca)
	if err != nil {
		return err
	}
	defer stop(ours.cmd)
	theirs, err := start(env, "kubectl", "proxy", "--port", "0")
	if err != nil {
		return err
	}
	defer stop(theirs.cmd)
	// The same proxy code without KAS, on kubectl proxy's path.
	pass := filepath.Join(tmp, "passthrough")
	buildPass := exec.Command("go", "build", "-o", pass, "./test/bench/proxybench/passthrough")
	buildPass.Dir = plugin.Repo()
	if out, err := buildPass.CombinedOutput(); err != nil {
		return fmt.Errorf("building passthrough: %v\n%s", err, out)
	}
	clusterCA := filepath.Join(tmp, "cluster-ca.pem")
	if err := os.WriteFile(clusterCA, c.CAData(), 0o644); err != nil {
		return err
	}
	direct2, err := start(append(env, "PASSTHROUGH_TOKEN="+c.RESTConfig().BearerToken), pass, c.Server, clusterCA)
	if err != nil {
		return err
	}
	defer stop(direct2.cmd)

	// The direct paths each proxy adds to.
	direct := clientFor(c.RESTConfig())
	cred, err := getToken(env, bin, a.ID)
	if err != nil {
		return err
	}
	kasClient := &http.Client{Transport: &bearer{token: cred.token, base: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: kas.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}, MaxIdleConnsPerHost: 64}}}
	plain := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	routes := []struct {
		name   string
		client *http.Client
		url    string
	}{
		{"apiserver, direct", direct, c.Server + path},
		{"kubectl proxy -> apiserver", plain, "http://" + theirs.addr + path},
		{"our proxy code (pkg/tunnel) -> apiserver", plain, "http://" + direct2.addr + path},
		{"fake KAS, direct", kasClient, kas.ProxyURL() + path},
		{"kubectl gitlab-agent proxy -> fake KAS -> apiserver", plain, "http://" + ours.addr + path},
	}
	if baseBin != "" {
		old, err := start(env, baseBin, "proxy", "bench", "--project", "infra/agents", "--port", "0", "--ca-file", ca)
		if err != nil {
			return fmt.Errorf("the plugin at %s: %w", baseline, err)
		}
		defer stop(old.cmd)
		routes = append(routes, struct {
			name   string
			client *http.Client
			url    string
		}{"  same, plugin at " + baseline, plain, "http://" + old.addr + path})
	}
	all := map[string]map[int][]stats{}
	for round := 0; round < rounds; round++ {
		for _, r := range routes {
			if all[r.name] == nil {
				all[r.name] = map[int][]stats{}
			}
			for _, conc := range []int{1, 16} {
				s, err := load(r.client, r.url, conc, d)
				if err != nil {
					return fmt.Errorf("%s: %w", r.name, err)
				}
				all[r.name][conc] = append(all[r.name][conc], s)
			}
		}
	}
	results := map[string]map[int]stats{}
	for name, byConc := range all {
		results[name] = map[int]stats{}
		for conc, list := range byConc {
			results[name][conc] = median(list)
		}
	}
	fmt.Printf("small GETs (%s), %s per measurement, median of %d interleaved rounds, same cluster, same run\n", path, d, rounds)
	fmt.Printf("%-52s %12s %12s %10s %10s\n", "route", "rps (1)", "rps (16)", "p50 (1)", "p99 (1)")
	for _, r := range routes {
		s1, s16 := results[r.name][1], results[r.name][16]
		fmt.Printf("%-52s %12.0f %12.0f %10s %10s\n", r.name, s1.rps, s16.rps, s1.p50, s1.p99)
	}
	apiserver, k, same := results[routes[0].name], results[routes[1].name], results[routes[2].name]
	kasDirect, o := results[routes[3].name], results[routes[4].name]
	fmt.Printf("added p50 latency at 1 client: kubectl proxy %s and our proxy code %s over the apiserver; our proxy %s over the fake KAS\n",
		k[1].p50-apiserver[1].p50, same[1].p50-apiserver[1].p50, o[1].p50-kasDirect[1].p50)
	fmt.Printf("throughput on the same path (-> apiserver), ours vs kubectl proxy: %.2f× at 1 client, %.2f× at 16\n",
		same[1].rps/k[1].rps, same[16].rps/k[16].rps)
	if baseBin != "" {
		b := results[routes[len(routes)-1].name]
		fmt.Printf("throughput through KAS, this tree vs the plugin at %s: %.2f× at 1 client, %.2f× at 16\n",
			baseline, o[1].rps/b[1].rps, o[16].rps/b[16].rps)
	}

	// get-token with a warm cache (kubectl runs it before every request).
	var walls []time.Duration
	for i := 0; i < 21; i++ {
		t, err := getToken(env, bin, a.ID)
		if err != nil {
			return err
		}
		if i > 0 {
			walls = append(walls, t.wall)
		}
	}
	sort.Slice(walls, func(i, j int) bool { return walls[i] < walls[j] })
	fmt.Printf("get-token, warm cache: median %s, p90 %s over 20 runs\n", walls[len(walls)/2].Round(10*time.Microsecond), walls[len(walls)*9/10].Round(10*time.Microsecond))
	return nil
}

// median is the round with the median throughput.
func median(list []stats) stats {
	sort.Slice(list, func(i, j int) bool { return list[i].rps < list[j].rps })
	return list[len(list)/2]
}

// buildAt builds the plugin as it was at the git ref into dir.
type proc struct {
	cmd  *exec.Cmd
	addr string
}

var serveRE = regexp.MustCompile(`Starting to serve on (\S+)`)

func start(env []string, name string, args ...string) (*proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	m := serveRE.FindStringSubmatch(line)
	if err != nil || m == nil {
		stop(cmd)
		return nil, fmt.Errorf("%s did not start: %q %v", name, line, err)
	}
	return &proc{cmd: cmd, addr: m[1]}, nil
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
}

type tokenRun struct {
	token string
	wall  time.Duration
}

var tokenRE = regexp.MustCompile(`"token":"([^"]+)"`)

func getToken(env []string, bin string, agent int64) (tokenRun, error) {
	cmd := exec.Command(bin, "get-token", "--agent-id", fmt.Sprint(agent))
	cmd.Env = env
	start := time.Now()
	out, err := cmd.Output()
	wall := time.Since(start)
	if err != nil {
		return tokenRun{}, fmt.Errorf("get-token: %v", err)
	}
	m := tokenRE.FindSubmatch(out)
	if m == nil {
		return tokenRun{}, fmt.Errorf("get-token printed %q", out)
	}
	return tokenRun{token: string(m[1]), wall: wall}, nil
}

type bearer struct {
	token string
	base  http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

func clientFor(cfg *rest.Config) *http.Client {
	cfg = rest.CopyConfig(cfg)
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		panic(err)
	}
	return &http.Client{Transport: rt}
}

type stats struct {
	rps      float64
	p50, p99 time.Duration
}

// load runs conc clients doing GETs for d and reports throughput and
// latency.
func load(c *http.Client, url string, conc int, d time.Duration) (stats, error) {
	// Warm up connections and caches.
	for i := 0; i < 20; i++ {
		if err := get(c, url); err != nil {
			return stats{}, err
		}
	}
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(deadline) {
				t := time.Now()
				if err := get(c, url); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr != nil {
		return stats{}, firstErr
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return stats{
		rps: float64(len(lat)) / d.Seconds(),
		p50: lat[len(lat)/2].Round(time.Microsecond),
		p99: lat[len(lat)*99/100].Round(time.Microsecond),
	}, nil
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
