// Package doctor finds out why an agent is not working: independent checks
// of GitLab, KAS (seen as agentk sees it) and the cluster, each bounded, run
// in parallel, each with a fix for what does not pass, and a verdict.
package doctor

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// Status is a check's outcome.
type Status string

// The outcomes, as -o json has them.
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Check is one check's outcome: what was found and, unless it passed, what
// to do.
type Check struct {
	ID      string `json:"id"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix"`
}

// The verdicts.
const (
	Healthy  = "healthy"
	Degraded = "degraded"
	Broken   = "broken"
)

// Report is every check, in a fixed order, and the verdict: broken when any
// check fails, degraded when any warns, healthy otherwise.
type Report struct {
	Agent   string  `json:"agent"`
	Checks  []Check `json:"checks"`
	Verdict string  `json:"verdict"`
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool { return r.Verdict == Broken }

// Cluster is what doctor reads from the cluster.
type Cluster interface {
	Reachable(ctx context.Context) error
	FindDeployments(ctx context.Context, selector string) ([]*appsv1.Deployment, error)
	// SecretMetadata reads a Secret's metadata only, never its data.
	SecretMetadata(ctx context.Context, ns, name string) (*metav1.ObjectMeta, error)
	GetConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error)
	Pods(ctx context.Context, ns, selector string) ([]corev1.Pod, error)
	PodLogs(ctx context.Context, ns, pod, container string, q kube.LogQuery) (string, error)
}

// Env is what doctor may use. Each part may be missing, with the reason:
// the checks that need it then skip, and say why.
type Env struct {
	GitLabURL string
	// GitLab sends the user's credential; nil when there is none
	// (NoCredentials says why). Anonymous sends none.
	GitLab        *gitlab.Client
	NoCredentials error
	Anonymous     *gitlab.Client
	Project       gitlab.ProjectRef
	NoProject     error
	Cluster       Cluster
	NoCluster     error
	// ProxyCredential is the k8s_proxy credential at hand for the agent
	// (a cached token, the job token), without minting one; false: none.
	ProxyCredential func(agentID int64) (string, bool)
	// ProxyClient reaches KAS's Kubernetes API proxy (its CA, --ca-file).
	ProxyClient *http.Client
	// Dial opens the connections to KAS's agent endpoint (or to the HTTPS
	// proxy on the way); nil: a net.Dialer's.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs are the CAs a KAS certificate is checked against besides
	// the CA agentk is given (nil: the system's).
	RootCAs *x509.CertPool
	// Timeout bounds each check (default 5s).
	Timeout time.Duration
	Now     func() time.Time
}

// check is one check: its id and what it does.
type check struct {
	id  string
	run func(ctx context.Context, d *doctor) Check
}

// checks are doctor's checks, in the order they are printed (the order of
// the table in docs/doctor.md).
var checks = []check{
	{"gitlab-reachable", checkGitLabReachable},
	{"gitlab-token", checkGitLabToken},
	{"kas-enabled", checkKASEnabled},
	{"kas-address", checkKASAddress},
	{"kas-dns", checkKASDNS},
	{"kas-tls", checkKASTLS},
	{"kas-handshake", checkKASHandshake},
	{"kas-version-skew", checkVersionSkew},
	{"agent-registered", checkAgentRegistered},
	{"agent-token", checkAgentToken},
	{"agent-token-limit", checkTokenLimit},
	{"agent-connected", checkConnected},
	{"agent-config", checkAgentConfig},
	{"cluster-reachable", checkClusterReachable},
	{"agent-pods", checkPods},
	{"agent-logs", checkLogs},
	{"k8s-proxy", checkK8sProxy},
}

// IDs are the check ids, in order.
func IDs() []string {
	out := make([]string, len(checks))
	for i, c := range checks {
		out[i] = c.id
	}
	return out
}

// defaultTimeout bounds each check unless Env.Timeout says otherwise.
const defaultTimeout = 5 * time.Second

// checkGrace is how long past its bound a check may take to report.
const checkGrace = 500 * time.Millisecond

// Run runs every check on agent name in parallel, each within the timeout,
// and returns the report. It sends no agent token anywhere.
func Run(ctx context.Context, env Env, name string) *Report {
	env.Timeout = timeoutOf(env)
	if env.Now == nil {
		env.Now = time.Now
	}
	d := newDoctor(ctx, env, name)
	d.prefetch()
	r := &Report{Agent: name, Checks: make([]Check, len(checks))}
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, env.Timeout)
			defer cancel()
			done := make(chan Check, 1)
			go func() { done <- c.run(cctx, d) }()
			// A check that honours its context says what timed out
			// itself; grace is how long it has to say so.
			grace := time.NewTimer(env.Timeout + checkGrace)
			defer grace.Stop()
			select {
			case out := <-done:
				out.ID = c.id
				r.Checks[i] = out
			case <-ctx.Done():
				r.Checks[i] = Check{ID: c.id, Status: Skip, Message: "interrupted"}
			case <-grace.C:
				// A check that does not honour its context still ends here.
				r.Checks[i] = Check{ID: c.id, Status: Fail, Message: fmt.Sprintf("no answer within %s", env.Timeout),
					Fix: "something on the way does not answer: see the other checks; raise --timeout if it is only slow"}
			}
		})
	}
	wg.Wait()
	r.Verdict = Healthy
	for _, c := range r.Checks {
		switch {
		case c.Status == Fail:
			r.Verdict = Broken
		case c.Status == Warn && r.Verdict == Healthy:
			r.Verdict = Degraded
		}
	}
	return r
}

func pass(format string, args ...any) Check {
	return Check{Status: Pass, Message: fmt.Sprintf(format, args...)}
}

func skip(format string, args ...any) Check {
	return Check{Status: Skip, Message: fmt.Sprintf(format, args...)}
}

func warn(fix, format string, args ...any) Check {
	return Check{Status: Warn, Message: fmt.Sprintf(format, args...), Fix: fix}
}

func fail(fix, format string, args ...any) Check {
	return Check{Status: Fail, Message: fmt.Sprintf(format, args...), Fix: fix}
}
