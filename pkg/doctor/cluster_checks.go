package doctor

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentconfig"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// checkClusterReachable: the kube API answers with the current context.
func checkClusterReachable(ctx context.Context, d *doctor) Check {
	c, err := d.needCluster()
	if err != nil {
		r, _ := skipped(err)
		return r
	}
	if err := c.Reachable(ctx); err != nil {
		return fail("check the kubeconfig context (kubectl config current-context) and that the cluster runs", "%v", err)
	}
	return pass("the cluster answers")
}

// checkPods: the Deployment is available at its desired replicas; crash
// loops, image pulls and restarts are named.
func checkPods(ctx context.Context, d *doctor) Check {
	dep, err := d.theDeployment()
	if err != nil {
		return failedOn(err, "see cluster-reachable")
	}
	if dep == nil {
		return fail(fmt.Sprintf("kubectl gitlab-agent install %s (or check the context: the agent may run in another cluster)", d.name),
			"agent %q is not installed in this cluster (no Deployment labelled %s)", d.name, manifest.Selector(manifest.Input{Name: d.name}))
	}
	r := kube.Rollout(dep)
	where := dep.Namespace + "/" + dep.Name
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil {
		return fail("see the Deployment", "%s has an invalid selector: %v", where, err)
	}
	pods, err := d.env.Cluster.Pods(ctx, dep.Namespace, sel.String())
	if err != nil {
		return fail("see cluster-reachable", "listing the pods of %s: %v", where, err)
	}
	var problems []string
	restarts := int32(0)
	now := d.env.Now()
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			restarts += cs.RestartCount
			if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" {
				problems = append(problems, fmt.Sprintf("pod %s: %s", p.Name, w.Reason))
			}
			// A restart long ago (a node drained, KAS upgraded) is history:
			// only one within restartWindow is named, so the verdict clears.
			if t := cs.LastTerminationState.Terminated; t != nil && cs.RestartCount > 0 && now.Sub(t.FinishedAt.Time) < restartWindow {
				problems = append(problems, fmt.Sprintf("pod %s restarted %d times, last %s ago: %s (exit %d)", p.Name, cs.RestartCount,
					now.Sub(t.FinishedAt.Time).Round(time.Second), t.Reason, t.ExitCode))
			}
		}
		if p.Status.Phase == "Pending" {
			for _, c := range p.Status.Conditions {
				if c.Type == "PodScheduled" && c.Status == "False" {
					problems = append(problems, fmt.Sprintf("pod %s cannot be scheduled: %s", p.Name, clip(c.Message, 160)))
				}
			}
		}
	}
	sort.Strings(problems)
	fix := fmt.Sprintf("see agent-logs, and kubectl describe pods -n %s -l %s", dep.Namespace, sel)
	for _, p := range problems {
		switch {
		case strings.Contains(p, "ImagePull"), strings.Contains(p, "ErrImage"):
			fix = "check the image and the registry's access (image.repository, image.tag, imagePullSecrets)"
		case strings.Contains(p, "cannot be scheduled"):
			fix = "check nodeSelector, tolerations and affinity, and the cluster's capacity"
		}
	}
	switch {
	case r.Available < r.Desired:
		msg := fmt.Sprintf("%s: %d of %d replicas available", where, r.Available, r.Desired)
		if len(problems) > 0 {
			msg += "; " + strings.Join(problems, "; ")
		}
		return fail(fix, "%s", msg)
	case len(problems) > 0:
		return warn(fix, "%s: %d/%d available, but %s", where, r.Available, r.Desired, strings.Join(problems, "; "))
	case r.Desired == 0:
		return warn(fmt.Sprintf("kubectl gitlab-agent upgrade %s --replicas 2", d.name), "%s is scaled to 0: no agentk runs", where)
	}
	return pass("%s: %d/%d available, %d restarts", where, r.Available, r.Desired, restarts)
}

// restartWindow is how long ago a restart still counts as a problem, and
// logWindow how far back agentk's logs are read: a fault that was mended
// stops being reported once it has aged out.
const (
	restartWindow = time.Hour
	logWindow     = 10 * time.Minute
)

// knownErrors map what agentk logs when it cannot work to the fix.
var knownErrors = []struct {
	re   *regexp.Regexp
	what string
	fix  string
}{
	{regexp.MustCompile(`x509: certificate signed by unknown authority|certificate is not trusted`), "agentk does not trust KAS's certificate",
		"give agentk KAS's CA with config.kasCaCert (see kas-tls)"},
	{regexp.MustCompile(`x509: certificate is valid for .*, not|certificate is not valid for any names`), "KAS's certificate is for another host",
		"dial the host on KAS's certificate (see kas-address)"},
	{regexp.MustCompile(`(?i)unauthenticated|invalid (agent )?token|401 Unauthorized`), "KAS refuses agentk's token",
		"install (or token rotate) gives agentk an active token (see agent-token)"},
	{regexp.MustCompile(`expected handshake response status code 101 but got 30[1278]|bad status.*30[1278]`), "the WebSocket to KAS is redirected",
		"add the trailing slash to --kas-address (see kas-handshake)"},
	{regexp.MustCompile(`expected handshake response status code 101 but got (400|426)|426 Upgrade Required`), "KAS does not speak the protocol agentk dials",
		"use the scheme GitLab advertises, wss:// or grpcs:// (see kas-address)"},
	{regexp.MustCompile(`no such host|server misbehaving`), "agentk cannot resolve KAS's host",
		"check the cluster's DNS and the host in --kas-address (see kas-dns)"},
	{regexp.MustCompile(`connection refused|i/o timeout|context deadline exceeded|network is unreachable`), "agentk cannot reach KAS",
		"allow the cluster's egress to KAS (firewall, NetworkPolicy, HTTPS_PROXY in extraEnv)"},
	{regexp.MustCompile(`(?i)is forbidden: User "system:serviceaccount`), "agentk's service account lacks permissions in the cluster",
		"check the ClusterRoleBinding of the agent's service account (rbac.create)"},
}

// tokenLike hides anything shaped like a GitLab token in quoted log text.
var tokenLike = regexp.MustCompile(`gl[a-z]+-[A-Za-z0-9_-]{8,}`)

// checkLogs: agentk's last log lines, against the errors it is known to log.
func checkLogs(ctx context.Context, d *doctor) Check {
	dep, err := d.theDeployment()
	if err != nil {
		return failedOn(err, "see cluster-reachable")
	}
	if dep == nil {
		return skip("no agentk runs in this cluster: see agent-pods")
	}
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil {
		return skip("%v", err)
	}
	pods, err := d.env.Cluster.Pods(ctx, dep.Namespace, sel.String())
	if err != nil {
		return fail("see cluster-reachable", "listing the pods: %v", err)
	}
	if len(pods) == 0 {
		return skip("no agentk pods: see agent-pods")
	}
	found := map[int]string{} // known error → an example line
	read := 0
	for _, p := range pods {
		text, err := d.env.Cluster.PodLogs(ctx, dep.Namespace, p.Name, manifest.ChartName, kube.LogQuery{Lines: 200, Since: logWindow, Limit: 256 << 10})
		if err != nil {
			continue // a pod that has not started has no log yet
		}
		read++
		for _, line := range strings.Split(text, "\n") {
			for i, k := range knownErrors {
				if _, seen := found[i]; !seen && k.re.MatchString(line) {
					// Redact before clipping: a token cut in half would
					// no longer match.
					found[i] = clip(tokenLike.ReplaceAllString(strings.TrimSpace(line), "<token>"), 200)
				}
			}
		}
	}
	if read == 0 {
		return warn(fmt.Sprintf("kubectl logs -n %s deployment/%s", dep.Namespace, dep.Name), "the logs of %d pods could not be read", len(pods))
	}
	if len(found) == 0 {
		return pass("no known error in the last %s of logs (at most 200 lines) of %d pods", logWindow, read)
	}
	idx := make([]int, 0, len(found))
	for i := range found {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var what, fixes []string
	for _, i := range idx {
		what = append(what, fmt.Sprintf("%s (%q)", knownErrors[i].what, found[i]))
		fixes = append(fixes, knownErrors[i].fix)
	}
	if d.connectedNow() {
		// agentk is connected now: what it logged was passing (a KAS
		// restart, a network blip) or is about something else.
		return warn(strings.Join(fixes, "; "), "agentk is connected, but logged in the last %s: %s", logWindow, strings.Join(what, "; "))
	}
	return fail(strings.Join(fixes, "; "), "agentk logs: %s", strings.Join(what, "; "))
}

// checkK8sProxy: a request through KAS's Kubernetes API proxy, when the
// agent grants access and a credential is at hand.
func checkK8sProxy(ctx context.Context, d *doctor) Check {
	cfg, err := d.theConfig()
	if err != nil {
		if c, ok := skipped(err); ok {
			return c
		}
		return skip("the agent's config file cannot be read: see agent-config")
	}
	if cfg == nil || (len(cfg.Entries(agentconfig.UserAccess, agentconfig.Projects))+len(cfg.Entries(agentconfig.UserAccess, agentconfig.Groups))+
		len(cfg.Entries(agentconfig.CIAccess, agentconfig.Projects))+len(cfg.Entries(agentconfig.CIAccess, agentconfig.Groups)) == 0) {
		return skip("the agent's config grants no user_access or ci_access: nothing can use KAS's proxy")
	}
	a, err := d.theAgent()
	if err != nil {
		return skip("the agent is not known: see agent-registered")
	}
	kas, err := d.metadata()
	if err != nil {
		return skip("KAS's proxy URL is not known: see kas-enabled")
	}
	if d.env.ProxyCredential == nil {
		return skip("no k8s_proxy credential at hand")
	}
	cred, ok := d.env.ProxyCredential(a.ID)
	if !ok {
		return skip("no k8s_proxy credential at hand: kubectl gitlab-agent kubeconfig %s makes one on first use (or run in CI with --ci)", d.name)
	}
	if gitlab.Cleartext(kas.ProxyURL) {
		return skip("KAS's proxy %s is not encrypted: doctor does not send a credential over it", kas.ProxyURL)
	}
	// A redirect is not followed: the credential stays with the host it
	// was made for, and a redirect is itself what is wrong.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if d.env.ProxyClient != nil {
		client.Transport, client.Timeout = d.env.ProxyClient.Transport, d.env.ProxyClient.Timeout
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(kas.ProxyURL, "/")+"/version", nil)
	if err != nil {
		return fail("see kas-enabled", "%v", err)
	}
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := client.Do(req)
	if err != nil {
		return fail("check that this machine reaches "+kas.ProxyURL, "GET %s/version: %v", kas.ProxyURL, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return pass("GET /version through %s answers", kas.ProxyURL)
	case http.StatusUnauthorized:
		return fail("kubectl gitlab-agent token-cache clear, then kubeconfig again; check that user_access names a project or group where you are Developer", "KAS refuses the credential (401)")
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return fail("check KAS's proxy URL in GitLab's /metadata (k8s_proxy_url) and any proxy in front of it",
			"%s redirects (%d) to %s: the credential was not sent on", kas.ProxyURL, resp.StatusCode, safeLoc(resp.Header.Get("Location")))
	case http.StatusForbidden:
		return fail(fmt.Sprintf("for a CI job, add its project to ci_access: kubectl gitlab-agent agent config set %s --project %s --ci-access-project JOB_PROJECT; for a person, check user_access", d.name, d.env.Project), "KAS refuses access to agent %d (403)", a.ID)
	}
	return fail("see kas-* and agent-connected", "GET /version through KAS: %s", resp.Status)
}
