package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentconfig"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
)

// checkGitLabReachable: GitLab answers /api/v4/metadata as GitLab does; an
// answer that refuses the credential still proves it is there.
func checkGitLabReachable(_ context.Context, d *doctor) Check {
	kas, err := d.metadata()
	var disabled *gitlab.ErrKASDisabled
	switch {
	case err == nil:
		return pass("GitLab %s answers at %s", kas.GitLabVersion, d.env.GitLabURL)
	case errors.As(err, &disabled):
		return pass("GitLab answers at %s", d.env.GitLabURL)
	case gitlab.IsClass(err, gitlab.ClassUnauthenticated), gitlab.IsClass(err, gitlab.ClassForbidden):
		return pass("GitLab answers at %s (it wants a credential for /metadata)", d.env.GitLabURL)
	case gitlab.IsClass(err, gitlab.ClassBadAnswer):
		return fail("check that --gitlab-url (or GITLAB_URL) is the GitLab instance itself, not a login page or a proxy", "%v", err)
	case gitlab.IsClass(err, gitlab.ClassRedirect):
		return fail("use the URL GitLab redirects to as --gitlab-url", "%v", err)
	}
	return failedOn(err, "check the URL, DNS, proxy settings (HTTPS_PROXY) and, for a private CA, SSL_CERT_FILE")
}

// checkGitLabToken: the credential is accepted, and its role on the project
// is enough for what the user will run.
func checkGitLabToken(ctx context.Context, d *doctor) Check {
	if d.env.GitLab == nil {
		if d.env.NoCredentials == nil {
			return skip("no GitLab credentials")
		}
		return skip("%v", d.env.NoCredentials)
	}
	creds := d.env.GitLab.Credentials()
	if creds.Token == "" && creds.JobToken != "" {
		return warn("for the agents API give the job a token with the api scope (GITLAB_TOKEN); the kubeconfig --ci context needs only the job token",
			"the job token (CI_JOB_TOKEN) cannot use GitLab's agents API")
	}
	user, err := d.env.GitLab.CurrentUser(ctx)
	if err != nil {
		if gitlab.IsClass(err, gitlab.ClassUnauthenticated) {
			return fail("create a personal access token with the api scope and set GITLAB_TOKEN (or --gitlab-token-file)", "GitLab refuses the token from %s: revoked, expired or for another instance", creds.Source)
		}
		return fail("see gitlab-reachable", "%v", err)
	}
	if d.env.NoProject != nil {
		return warn("pass --project GROUP/PROJECT, the project that holds the agent", "the token is %s's; %v", user, d.env.NoProject)
	}
	role, err := d.env.GitLab.Role(ctx, d.env.Project)
	switch {
	case gitlab.IsClass(err, gitlab.ClassNotFound):
		return fail(fmt.Sprintf("check --project, and that %s is a member of it", user), "%s cannot see project %s", user, d.env.Project)
	case err != nil:
		return fail("see gitlab-reachable", "%v", err)
	case role < gitlab.RoleDeveloper:
		return fail("ask a Maintainer of "+d.env.Project.String()+" for the Developer role (Maintainer for install and token rotation)",
			"%s has the %s role on %s: the agents API needs Developer", user, role, d.env.Project)
	case role < gitlab.RoleMaintainer:
		return warn("install, upgrade of the registration, token create, revoke and rotate need the Maintainer role on "+d.env.Project.String(),
			"the token is %s's, a Developer of %s: enough to read, not to register agents or change tokens", user, d.env.Project)
	}
	return pass("the token is %s's, a %s of %s", user, role, d.env.Project)
}

// checkKASEnabled: the instance has KAS.
func checkKASEnabled(_ context.Context, d *doctor) Check {
	kas, err := d.metadata()
	var disabled *gitlab.ErrKASDisabled
	switch {
	case err == nil:
		return pass("KAS %s, for agents at %s", kas.Version, kas.AgentURL)
	case errors.As(err, &disabled):
		return fail("an administrator enables the agent server (gitlab_kas['enable'] = true in gitlab.rb, or global.kas.enabled in the GitLab chart)", "this GitLab has KAS disabled")
	case gitlab.IsClass(err, gitlab.ClassUnauthenticated):
		return skip("GitLab gives /metadata only with a credential")
	}
	if c, ok := skipped(err); ok {
		return c
	}
	return skip("GitLab's /metadata cannot be read: see gitlab-reachable")
}

// checkVersionSkew: agentk's version against KAS's.
func checkVersionSkew(_ context.Context, d *doctor) Check {
	kas, err := d.metadata()
	if err != nil {
		return skip("KAS's version is not known: see kas-enabled")
	}
	v, err := d.theAgentk()
	if err != nil {
		if c, ok := skipped(err); ok {
			return c
		}
		return skip("%v", err)
	}
	if v.Version == "" || kas.Version == "" {
		return skip("agentk's image %q or KAS's version %q has no version to compare", v.Image, kas.Version)
	}
	w := install.SkewWarning(v.Version, kas.Version)
	// KAS's release: a pre-release of KAS names no image (install.AgentRelease).
	tag, _, ok := install.AgentRelease(kas.Version)
	if !ok {
		tag = "v" + strings.TrimPrefix(kas.Version, "v")
	}
	dist, _ := install.Skew(v.Version, kas.Version)
	switch {
	case w != "" && dist > 0: // ahead of KAS (the same rule as status --group)
		return fail(fmt.Sprintf("run agentk at KAS's version: kubectl gitlab-agent upgrade %s --agent-version %s", d.name, tag), "%s", w)
	case w != "":
		return warn(fmt.Sprintf("kubectl gitlab-agent upgrade %s --agent-version %s", d.name, tag), "%s", w)
	}
	return pass("agentk %s with KAS %s", v.Version, kas.Version)
}

// checkAgentRegistered: the agent exists in the project.
func checkAgentRegistered(_ context.Context, d *doctor) Check {
	a, err := d.theAgent()
	switch {
	case err == nil:
		return pass("agent %q (id %d) is registered in %s", a.Name, a.ID, a.ConfigProject)
	case gitlab.IsClass(err, gitlab.ClassNotFound):
		return fail(fmt.Sprintf("kubectl gitlab-agent install %s --project %s (or agent register)", d.name, d.env.Project), "no agent %q in %s", d.name, d.env.Project)
	}
	return failedOn(err, "see gitlab-token")
}

// checkAgentToken: the token the cluster's Secret holds is active.
func checkAgentToken(ctx context.Context, d *doctor) Check {
	a, err := d.theAgent()
	if err != nil {
		if c, ok := skipped(err); ok {
			return c
		}
		return skip("the agent is not known: see agent-registered")
	}
	v, err := d.theAgentk()
	if err != nil {
		return failedOn(err, "see agent-pods")
	}
	dep, _ := d.theDeployment()
	s, err := d.env.Cluster.SecretMetadata(ctx, dep.Namespace, v.Secret)
	switch {
	case err != nil:
		return fail("see cluster-reachable", "reading Secret %s/%s: %v", dep.Namespace, v.Secret, err)
	case s == nil:
		return fail(fmt.Sprintf("kubectl gitlab-agent install %s, which writes it", d.name), "agentk mounts Secret %s/%s, which does not exist", dep.Namespace, v.Secret)
	}
	var id int64
	if _, err := fmt.Sscanf(s.Annotations[install.TokenIDAnnotation], "%d", &id); err != nil || id == 0 {
		return warn(fmt.Sprintf("kubectl gitlab-agent install %s adopts it and records the token's ID (or token rotate replaces it)", d.name),
			"Secret %s/%s does not say which token it holds (no %s annotation): its token cannot be checked", dep.Namespace, v.Secret, install.TokenIDAnnotation)
	}
	t, err := d.env.GitLab.GetToken(ctx, d.env.Project, a, id)
	switch {
	case gitlab.IsClass(err, gitlab.ClassNotFound):
		return fail(fmt.Sprintf("kubectl gitlab-agent install %s creates and installs a new token", d.name), "the Secret holds token %d, which GitLab has revoked: agentk cannot connect", id)
	case err != nil:
		return fail("see gitlab-token", "%v", err)
	}
	return pass("the Secret holds token %d %q, active", t.ID, t.Name)
}

// checkTokenLimit: two active tokens block rotation.
func checkTokenLimit(_ context.Context, d *doctor) Check {
	tokens, err := d.theTokens()
	if err != nil {
		return failedOn(err, "see gitlab-token")
	}
	if len(tokens) >= gitlab.MaxActiveTokens {
		lru := tokens[len(tokens)-1]
		return warn(fmt.Sprintf("revoke the one not in use, e.g. kubectl gitlab-agent token revoke %s %d", d.name, lru.ID),
			"%d active tokens, GitLab's limit: token rotate cannot create a new one", len(tokens))
	}
	return pass("%d active token(s) of %d allowed", len(tokens), gitlab.MaxActiveTokens)
}

// lastUsed is when agentk last used one of tokens, nil when never.
func lastUsed(tokens []*gitlab.Token) *time.Time {
	var last *time.Time
	for _, t := range tokens {
		if t.LastUsedAt != nil && (last == nil || t.LastUsedAt.After(*last)) {
			last = t.LastUsedAt
		}
	}
	return last
}

// connectedNow reports whether agent-connected passes: agentk used a token
// within the last few minutes.
func (d *doctor) connectedNow() bool {
	tokens, err := d.theTokens()
	if err != nil {
		return false
	}
	last := lastUsed(tokens)
	return last != nil && d.env.Now().Sub(*last) <= recent
}

// checkConnected: agentk used a token recently.
func checkConnected(_ context.Context, d *doctor) Check {
	tokens, err := d.theTokens()
	if err != nil {
		return failedOn(err, "see gitlab-token")
	}
	last := lastUsed(tokens)
	now := d.env.Now()
	switch {
	case last == nil:
		return fail("see the kas-* checks for the way to KAS, and agent-pods and agent-logs for agentk", "no token of agent %q was ever used: agentk has never connected", d.name)
	case now.Sub(*last) > recent:
		return fail("see the kas-* checks, agent-pods and agent-logs", "agent %q last connected %s ago", d.name, now.Sub(*last).Round(time.Second))
	}
	return pass("agent %q connected %s ago", d.name, now.Sub(*last).Round(time.Second))
}

// checkAgentConfig: the config file parses, uses no deprecated keys, and
// names projects and groups that exist.
func checkAgentConfig(ctx context.Context, d *doctor) Check {
	cfg, err := d.theConfig()
	var cfe *install.ConfigFileError
	switch {
	case errors.As(err, &cfe):
		return fail("fix the file in the agent's config project: GitLab ignores a config it cannot parse", "%v", cfe.Err)
	case err != nil:
		return failedOn(err, "see gitlab-token")
	case cfg == nil:
		return pass("no %s: the agent runs with the defaults", agentconfig.Path(d.name))
	}
	var problems []string
	fix := ""
	gitops, stale := install.HasGitOps(cfg)
	if stale {
		// KAS 18.0 and later refuse the config: a failure, not a warning.
		if kas, err := d.metadata(); err == nil && install.KASRefusesGitOps(kas.Version) {
			return fail(install.MoveToFlux(d.name), "%s sets %s, which KAS %s refuses (18.0 and later do): the agent never connects", agentconfig.Path(d.name), gitops, kas.Version)
		}
		problems = append(problems, gitops+" is deprecated: KAS 18.0 and later refuse a config with it")
		fix = install.MoveToFlux(d.name)
	}
	var unchecked []string // names GitLab could not answer for
	for _, section := range []string{agentconfig.CIAccess, agentconfig.UserAccess} {
		for _, id := range cfg.Entries(section, agentconfig.Projects) {
			_, err := d.env.GitLab.Role(ctx, gitlab.ProjectRef{Path: id})
			switch {
			case gitlab.IsClass(err, gitlab.ClassNotFound):
				problems = append(problems, fmt.Sprintf("%s.projects names %s, which does not exist or you cannot see", section, id))
			case err != nil:
				unchecked = append(unchecked, id)
			}
		}
		for _, id := range cfg.Entries(section, agentconfig.Groups) {
			ok, err := d.env.GitLab.GroupExists(ctx, id)
			switch {
			case err != nil:
				unchecked = append(unchecked, id)
			case !ok:
				problems = append(problems, fmt.Sprintf("%s.groups names %s, which does not exist or you cannot see", section, id))
			}
		}
	}
	if len(unchecked) > 0 {
		problems = append(problems, fmt.Sprintf("not fully checked: GitLab did not answer for %s", strings.Join(unchecked, ", ")))
	}
	if len(problems) > 0 {
		switch {
		case fix != "":
		case len(unchecked) > 0 && len(problems) == 1:
			fix = "run doctor again; if it persists, see gitlab-reachable and gitlab-token"
		default:
			fix = "correct the paths with kubectl gitlab-agent agent config set " + d.name + " --remove-ci-access-project ... (or edit the file)"
		}
		return warn(fix, "%s", strings.Join(problems, "; "))
	}
	return pass("%s parses; every project and group it names exists", agentconfig.Path(d.name))
}
