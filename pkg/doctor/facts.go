package doctor

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentconfig"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// lazy is a fact several checks need: found once, by whichever asks first,
// within its own time bound.
type lazy[T any] struct {
	once sync.Once
	v    T
	err  error
}

func (l *lazy[T]) get(d *doctor, f func(ctx context.Context) (T, error)) (T, error) {
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(d.ctx, d.env.Timeout)
		defer cancel()
		l.v, l.err = f(ctx)
	})
	return l.v, l.err
}

// doctor is one run: the environment and the facts the checks share.
type doctor struct {
	ctx  context.Context
	env  Env
	name string

	kas        lazy[*gitlab.KAS]
	project    lazy[*gitlab.Project]
	agent      lazy[*gitlab.Agent]
	tokens     lazy[[]*gitlab.Token]
	deployment lazy[*appsv1.Deployment]
	agentk     lazy[*agentkView]
	config     lazy[*agentconfig.Config]
}

func newDoctor(ctx context.Context, env Env, name string) *doctor {
	return &doctor{ctx: ctx, env: env, name: name}
}

// prefetch finds the shared facts, in parallel, before the checks start:
// so that a check's own bound is spent on its own probe, not on waiting
// for a cluster or a GitLab that hangs. Each fact has its own bound (a
// fact that depends on another starts its clock after it); a fact whose
// call ignores its context is left behind after two bounds, and the
// checks that need it end on their own bounds.
func (d *doctor) prefetch() {
	done := make(chan struct{}, 4)
	for _, f := range []func(){
		func() { _, _ = d.metadata() },
		func() { _, _ = d.theAgentk() },
		func() { _, _ = d.theTokens() },
		func() { _, _ = d.theConfig() },
	} {
		go func() { f(); done <- struct{}{} }()
	}
	limit := time.NewTimer(2*d.env.Timeout + checkGrace)
	defer limit.Stop()
	for i := 0; i < 4; i++ {
		select {
		case <-done:
		case <-limit.C:
			return
		case <-d.ctx.Done():
			return
		}
	}
}

// errSkipped is a fact that cannot be had: its reason makes the check skip.
type errSkipped struct{ reason string }

func (e *errSkipped) Error() string { return e.reason }

// failedOn is the verdict of a check whose fact could not be had: the
// fact's skip reason, else a failure with fix.
func failedOn(err error, fix string) Check {
	if c, ok := skipped(err); ok {
		return c
	}
	return fail(fix, "%v", err)
}

func skipped(err error) (Check, bool) {
	var s *errSkipped
	if errors.As(err, &s) {
		return skip("%s", s.reason), true
	}
	return Check{}, false
}

// metadata is KAS as GitLab's /metadata advertises it.
func (d *doctor) metadata() (*gitlab.KAS, error) {
	return d.kas.get(d, func(ctx context.Context) (*gitlab.KAS, error) {
		c := d.env.GitLab
		if c == nil {
			c = d.env.Anonymous
		}
		if c == nil {
			return nil, &errSkipped{"no GitLab URL"}
		}
		return c.DiscoverKAS(ctx)
	})
}

// needGitLab is the credentialed client, or why the check skips.
func (d *doctor) needGitLab() (*gitlab.Client, error) {
	if d.env.GitLab == nil {
		// gitlab-token says which sources were tried, once.
		return nil, &errSkipped{"no GitLab credentials: see gitlab-token"}
	}
	if creds := d.env.GitLab.Credentials(); creds.Token == "" && creds.JobToken != "" {
		return nil, &errSkipped{"GitLab's API does not take a CI job token for this: see gitlab-token"}
	}
	if d.env.NoProject != nil {
		return nil, &errSkipped{d.env.NoProject.Error()}
	}
	return d.env.GitLab, nil
}

// withGitLab finds l with the credentialed client; without one the fact
// is skipped (needGitLab says why).
func withGitLab[T any](d *doctor, l *lazy[T], find func(context.Context, *gitlab.Client) (T, error)) (T, error) {
	return l.get(d, func(ctx context.Context) (T, error) {
		c, err := d.needGitLab()
		if err != nil {
			var none T
			return none, err
		}
		return find(ctx, c)
	})
}

func (d *doctor) theProject() (*gitlab.Project, error) {
	return withGitLab(d, &d.project, func(ctx context.Context, c *gitlab.Client) (*gitlab.Project, error) {
		return c.GetProject(ctx, d.env.Project)
	})
}

func (d *doctor) theAgent() (*gitlab.Agent, error) {
	return withGitLab(d, &d.agent, func(ctx context.Context, c *gitlab.Client) (*gitlab.Agent, error) {
		return c.FindAgent(ctx, d.env.Project, gitlab.AgentRef{Name: d.name})
	})
}

// theTokens are the agent's active tokens with their last use.
func (d *doctor) theTokens() ([]*gitlab.Token, error) {
	a, aerr := d.theAgent() // before the clock of this fact starts
	return d.tokens.get(d, func(ctx context.Context) ([]*gitlab.Token, error) {
		if aerr != nil {
			return nil, &errSkipped{"the agent is not known: see agent-registered"}
		}
		return d.env.GitLab.ListTokensWithLastUse(ctx, d.env.Project, a)
	})
}

// needCluster is the cluster, or why the check skips.
func (d *doctor) needCluster() (Cluster, error) {
	if d.env.Cluster == nil {
		reason := "no cluster"
		if d.env.NoCluster != nil {
			reason = "no cluster: " + d.env.NoCluster.Error()
		}
		return nil, &errSkipped{reason}
	}
	return d.env.Cluster, nil
}

// theDeployment is the agent's Deployment in the cluster, found by the
// chart's labels; nil when there is none.
func (d *doctor) theDeployment() (*appsv1.Deployment, error) {
	return d.deployment.get(d, func(ctx context.Context) (*appsv1.Deployment, error) {
		c, err := d.needCluster()
		if err != nil {
			return nil, err
		}
		if err := c.Reachable(ctx); err != nil {
			return nil, &errSkipped{"the cluster does not answer: see cluster-reachable"}
		}
		ds, err := c.FindDeployments(ctx, manifest.Selector(manifest.Input{Name: d.name}))
		if err != nil || len(ds) == 0 {
			return nil, err
		}
		return ds[0], nil
	})
}

// agentkView is what the running agentk is given: the KAS address, the
// CA it trusts for KAS, the headers it sends, and its token Secret.
type agentkView struct {
	install.Running
	// CAs are the system's and the CA agentk is given, if any.
	CAs    *x509.CertPool
	Header http.Header
	Secret string
}

// theAgentk reads the agentk container of the Deployment.
func (d *doctor) theAgentk() (*agentkView, error) {
	dep, derr := d.theDeployment() // before the clock of this fact starts
	return d.agentk.get(d, func(ctx context.Context) (*agentkView, error) {
		if derr != nil {
			return nil, derr
		}
		if dep == nil {
			return nil, &errSkipped{"the agent is not installed in this cluster: see agent-pods"}
		}
		run, caErr := install.ReadRunning(ctx, d.env.Cluster, dep)
		if run.Container == nil {
			return nil, &errSkipped{fmt.Sprintf("Deployment %s/%s has no %s container: see agent-pods", dep.Namespace, dep.Name, manifest.ChartName)}
		}
		if caErr != nil {
			return nil, caErr
		}
		v := &agentkView{Running: run, Header: http.Header{}}
		for _, h := range run.KasHeaders {
			addHeader(v.Header, h)
		}
		// The token Secret is the one mounted where --token-file points.
		if vol := run.VolumeAt(dep, run.TokenFile); vol != nil && vol.Secret != nil {
			v.Secret = vol.Secret.SecretName
		}
		pool, err := x509.SystemCertPool()
		if err != nil || d.env.RootCAs != nil {
			pool = d.env.RootCAs
		}
		if pool == nil {
			pool = x509.NewCertPool()
		} else {
			pool = pool.Clone()
		}
		v.CAs = pool
		if run.KasCA != "" && !v.CAs.AppendCertsFromPEM([]byte(run.KasCA)) {
			return nil, fmt.Errorf("the CA agentk is given (%s) holds no PEM certificate", run.KasCAFile)
		}
		return v, nil
	})
}

func addHeader(h http.Header, line string) {
	if k, val, ok := strings.Cut(line, ":"); ok {
		h.Add(strings.TrimSpace(k), strings.TrimSpace(val))
	}
}

// kasTarget is the KAS address to probe, the CAs and the headers to probe
// it with, and where they came from: the running agent's, else what GitLab
// advertises (then with the system's CAs and no headers).
type kasTarget struct {
	u      *url.URL
	from   string
	cas    *x509.CertPool
	header http.Header
}

func (d *doctor) target() (*kasTarget, error) {
	if v, err := d.theAgentk(); err == nil && v.KasAddress != "" {
		u, err := url.Parse(v.KasAddress)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("agentk's --kas-address %q is not a URL", v.KasAddress)
		}
		return &kasTarget{u: u, from: "agentk's --kas-address", cas: v.CAs, header: v.Header}, nil
	}
	kas, err := d.metadata()
	if err != nil {
		return nil, &errSkipped{"no KAS address: neither a running agent nor GitLab's /metadata gives one"}
	}
	u, err := url.Parse(kas.AgentURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("GitLab advertises a KAS address that is not a URL: %q", kas.AgentURL)
	}
	cas := d.env.RootCAs
	if cas == nil {
		cas, _ = x509.SystemCertPool()
	}
	return &kasTarget{u: u, from: "GitLab's advertised KAS address", cas: cas, header: http.Header{}}, nil
}

// theConfig is the agent's config file on the default branch (nil when
// there is none).
func (d *doctor) theConfig() (*agentconfig.Config, error) {
	p, perr := d.theProject() // before the clock of this fact starts
	return withGitLab(d, &d.config, func(ctx context.Context, c *gitlab.Client) (*agentconfig.Config, error) {
		if perr != nil {
			return nil, perr
		}
		cfg, prev, err := install.LoadAgentConfig(ctx, c, d.env.Project, d.name, p.DefaultBranch)
		if err != nil {
			return nil, err
		}
		if prev == nil {
			return nil, nil
		}
		return cfg, nil
	})
}

// recent is how recent a token's last use must be for the agent to count
// as connected.
const recent = 10 * time.Minute
