package cmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentname"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/doctor"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/input"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/tunnel"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// DoctorOptions checks why an agent does not work.
type DoctorOptions struct {
	Global  *GlobalOptions
	Factory Factory
	GitLab  GitLabFlags
	Kube    *genericclioptions.ConfigFlags
	Output  *OutputFlags
	Timeout time.Duration
	CAFile  string

	name string
	env  doctor.Env
	genericiooptions.IOStreams
}

// NewCmdDoctor builds `doctor NAME`.
func NewCmdDoctor(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &DoctorOptions{Global: g, Factory: f, Output: NewOutputFlags("text", "json", "yaml"), IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "doctor [NAME]",
		Short: "Find out why an agent is not working, and say how to fix it",
		Long: `Check, in parallel and each within --timeout, what an agent needs: GitLab and
the credential, KAS as agentk dials it (the address, CA and headers of the
running Deployment, against what GitLab's /metadata advertises: DNS, TLS, the
WebSocket or gRPC handshake), the agent's registration, tokens, connection and
config file, and in the cluster its pods and the errors in their logs. One
line per check, with what to do for anything that does not pass, then a
verdict: healthy, degraded (warnings) or broken. Without NAME, the agent is
the only one running in the cluster, else the project's only agent.

Each part needs only what it checks: without a cluster the GitLab and KAS
checks still run, without GitLab credentials the cluster ones do. The agent
token is read from nowhere and sent nowhere.

-o json prints {"agent", "checks": [{"id", "status", "message", "fix"}],
"verdict"}, a contract for CI (see docs/doctor.md for the check ids).
Exit status: 0 when no check fails, 1 when one does, 2 for a usage error.`,
		Example: `  kubectl gitlab-agent doctor prod-eu --project infra/agents
  kubectl gitlab-agent doctor          # the agent of the current cluster
  kubectl gitlab-agent doctor prod-eu -o json | jq '.checks[] | select(.status != "pass")'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.MaximumNArgs(1)(cmd, args); err != nil {
				return &ExitError{Code: 2, Err: fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())}
			}
			return nil
		},
		// Usage errors exit 2, a failing check 1 (Run's ExitError).
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if err := o.Validate(); err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &ExitError{Code: 2, Err: fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	o.GitLab.AddFlags(cmd, true)
	cmd.ValidArgsFunction = agentNames(f, &o.GitLab)
	o.Output.AddFlags(cmd)
	o.Kube = newKubeFlags(cmd)
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 5*time.Second, "the longest each check may take")
	cmd.Flags().StringVar(&o.CAFile, "ca-file", "", "a PEM file with the CA of a KAS behind a private CA, for the k8s-proxy check")
	return cmd
}

// Complete gathers what is at hand, without a request; what is missing
// makes its checks skip.
func (o *DoctorOptions) Complete(cmd *cobra.Command, args []string) error {
	if len(args) == 1 {
		o.name = args[0]
	}
	url := o.GitLab.ResolvedURL()
	o.env = doctor.Env{GitLabURL: url, Timeout: o.Timeout}
	var err error
	if o.env.Project, err = o.GitLab.ProjectRef(o.ErrOut); err != nil {
		o.env.NoProject = err
	}
	f, err := o.GitLab.withRequestTimeout(o.Factory)
	if err != nil {
		return err
	}
	creds, err := o.GitLab.Credentials()
	if err != nil {
		o.env.NoCredentials = err
	} else {
		o.GitLab.WarnCleartext(o.ErrOut, url, "the GitLab token")
		if o.env.GitLab, err = f.GitLab(doctorGitLab(url, creds, o.Timeout)); err != nil {
			return err
		}
	}
	return completeDoctorEnv(cmd.Context(), &o.env, f, o.Kube, o.CAFile, creds)
}

// doctorGitLab is a client for doctor's checks: one quick retry, each call
// within the check's bound.
func doctorGitLab(url string, creds gitlab.Credentials, timeout time.Duration) gitlab.Options {
	return gitlab.Options{URL: url, Credentials: creds, Anonymous: creds == (gitlab.Credentials{}), MaxRetries: 1,
		RetryBase: 200 * time.Millisecond, CallTimeout: timeout}
}

// completeDoctorEnv adds to env what doctor reads besides the credentialed
// client: GitLab without credentials, the cluster (or why there is none),
// the dialer that reaches KAS, the client for KAS's proxy (with caFile's CA)
// and the k8s_proxy credential already at hand (creds' cached token, or the
// job token in CI).
func completeDoctorEnv(ctx context.Context, env *doctor.Env, f Factory, kubeFlags *genericclioptions.ConfigFlags, caFile string, creds gitlab.Credentials) error {
	anon, err := f.GitLab(doctorGitLab(env.GitLabURL, gitlab.Credentials{}, env.Timeout))
	if err != nil {
		return err
	}
	env.Anonymous = anon
	if env.Cluster, err = f.Doctor(kubeFlags); err != nil {
		env.Cluster, env.NoCluster = nil, err
	}
	env.Dial = f.KASDialer()
	transport := &http.Transport{DialContext: env.Dial, Proxy: http.ProxyFromEnvironment}
	if caFile != "" {
		pem, err := input.ReadFile(ctx, caFile, nil, input.MaxCA, "--ca-file")
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca-file %s holds no PEM certificate", caFile)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	env.ProxyClient = &http.Client{Timeout: env.Timeout, Transport: transport}
	cache, cacheErr := tunnel.DefaultCache()
	url := env.GitLabURL
	env.ProxyCredential = func(agentID int64) (string, bool) {
		co := tunnel.CredentialOptions{GitLabURL: url, AgentID: agentID, Credentials: creds,
			CI: os.Getenv("CI_JOB_TOKEN") != "" && creds.Token == ""}
		if cacheErr == nil {
			co.Cache = cache
		}
		return tunnel.CachedCredential(co)
	}
	return nil
}

// Validate checks the name and the timeout.
func (o *DoctorOptions) Validate() error {
	if o.name != "" {
		if err := agentname.Validate(o.name); err != nil {
			return err
		}
	}
	if err := o.Output.Validate(); err != nil {
		return err
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	return nil
}

// Run finds the agent when none was named, runs the checks and prints the
// report; the exit code is 1 when a check fails.
func (o *DoctorOptions) Run(ctx context.Context) error {
	if o.name == "" {
		name, err := doctor.Infer(ctx, o.env)
		if err != nil {
			return &ExitError{Code: 2, Err: err}
		}
		o.name = name
		fmt.Fprintf(o.ErrOut, "checking agent %q\n", o.name)
	}
	r := doctor.Run(ctx, o.env, o.name)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := o.Output.Print(o.Out, o.Global.NoColor, doctorResult{r}); err != nil {
		return err
	}
	if r.Failed() {
		return &ExitError{Code: 1}
	}
	return nil
}

// doctorResult is what doctor prints: its report.
type doctorResult struct{ *doctor.Report }

// WriteText writes a line per check, with the fix of those that did not
// pass, then the verdict.
func (r doctorResult) WriteText(w io.Writer, p *ui.Painter) error {
	style := map[doctor.Status]ui.Style{doctor.Pass: ui.Good, doctor.Warn: ui.Warn, doctor.Fail: ui.Bad, doctor.Skip: ui.Faint}
	var b strings.Builder
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.ID))
	}
	for _, c := range r.Checks {
		// Messages quote GitLab, KAS and the cluster: printed inert.
		fmt.Fprintf(&b, "%s  %-*s  %s\n", p.Paint(fmt.Sprintf("%-4s", strings.ToUpper(string(c.Status))), style[c.Status]), width, c.ID, safetext.Line(c.Message))
		if c.Fix != "" && c.Status != doctor.Pass && c.Status != doctor.Skip {
			fmt.Fprintf(&b, "      %-*s  fix: %s\n", width, "", safetext.Line(c.Fix))
		}
	}
	verdict := map[string]ui.Style{doctor.Healthy: ui.Good, doctor.Degraded: ui.Warn, doctor.Broken: ui.Bad}[r.Verdict]
	fmt.Fprintf(&b, "\nagent %q: %s\n", r.Agent, p.Paint(r.Verdict, verdict))
	_, err := fmt.Fprint(w, b.String())
	return err
}
