package install

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// activeDeployTokenInSecret says whether the GitRepository's Secret names a
// deploy token GitLab lists as active.
func (w *world) activeDeployTokenInSecret(t *testing.T, ns, name string) bool {
	t.Helper()
	s := w.cluster.Get(kube.Ref{APIVersion: "v1", Kind: "Secret", Namespace: ns, Name: name})
	if s == nil {
		return false
	}
	id, _ := strconv.ParseInt(s.GetAnnotations()[DeployTokenIDAnnotation], 10, 64)
	for _, d := range w.gl.DeployTokens(w.project.ID) {
		if d.ID == id && !d.Revoked {
			return true
		}
	}
	return false
}

// TestBootstrapRepairsItsDeployToken: bootstrap's own GitRepository is not
// "reused" as another's on a re-run: a revoked deploy token is replaced
// (and one near its expiry renewed, as the docs say), so that a re-run
// repairs what Flux fetches with.
func TestBootstrapRepairsItsDeployToken(t *testing.T) {
	w := newWorld(t)
	w.withFlux(t)
	ctx := context.Background()
	res, err := Bootstrap(ctx, w.bootstrapEnv(), w.bootstrapOpts("rd"))
	if err != nil || !res.DeployTokenNew {
		t.Fatalf("bootstrap: %v %+v", err, res)
	}
	w.gl.RevokeDeployToken(res.DeployTokenID)
	again, err := Bootstrap(ctx, w.bootstrapEnv(), w.bootstrapOpts("rd"))
	if err != nil {
		t.Fatal(err)
	}
	if again.GitRepository.Action == "reused" || !again.DeployTokenNew || !w.activeDeployTokenInSecret(t, "flux-system", "gitlab-agent-rd-git") {
		t.Fatalf("a re-run left Flux with a revoked deploy token: %+v %+v", again.GitRepository, again)
	}
}

// TestBootstrapRerunAfterAFailureRepairs: a run that fails after it made
// the GitRepository revokes its deploy token and deletes its Secret; the
// next run must give the GitRepository a working Secret again.
func TestBootstrapRerunAfterAFailureRepairs(t *testing.T) {
	w := newWorld(t)
	w.withFlux(t)
	ctx := context.Background()
	w.gl.Inject(faultEnvironment400())
	if _, err := Bootstrap(ctx, w.bootstrapEnv(), w.bootstrapOpts("rf")); err == nil {
		t.Fatal("want the environment to fail")
	}
	w.gl.ClearFaults()
	if _, err := Bootstrap(ctx, w.bootstrapEnv(), w.bootstrapOpts("rf")); err != nil {
		t.Fatal(err)
	}
	if !w.activeDeployTokenInSecret(t, "flux-system", "gitlab-agent-rf-git") {
		t.Fatal("after a failed run, a re-run leaves the GitRepository without a usable deploy token Secret")
	}
}

func faultEnvironment400() fakegitlab.Fault {
	return fakegitlab.Fault{Route: "POST /api/v4/projects/{id}/environments", Status: 400}
}

// TestBootstrapFailureSaysWhatStays: a run that fails after it made the
// Flux objects says they stay, and sends the user to bootstrap (install
// refuses an agent Flux applies).
func TestBootstrapFailureSaysWhatStays(t *testing.T) {
	w := newWorld(t)
	w.withFlux(t)
	w.gl.Inject(faultEnvironment400())
	_, err := Bootstrap(context.Background(), w.bootstrapEnv(), w.bootstrapOpts("ws"))
	if err == nil {
		t.Fatal("want the environment to fail")
	}
	for _, want := range []string{"Kustomization flux-system/gitlab-agent-ws stays", "GitRepository flux-system/gitlab-agent-ws stays", "run bootstrap again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "run install again") {
		t.Errorf("the error sends the user to install, which refuses a bootstrapped agent: %v", err)
	}
}

// TestBootstrapRerunWithoutDeployTokenRights: a re-run by someone who may
// not list deploy tokens (a Developer's upgrade) keeps the one there.
func TestBootstrapRerunWithoutDeployTokenRights(t *testing.T) {
	w := newWorld(t)
	w.withFlux(t)
	ctx := context.Background()
	if _, err := Bootstrap(ctx, w.bootstrapEnv(), w.bootstrapOpts("dv")); err != nil {
		t.Fatal(err)
	}
	w.gl.Inject(fakegitlab.Fault{Route: "GET /api/v4/projects/{id}/deploy_tokens", Status: 403})
	again, err := Bootstrap(ctx, w.bootstrapEnv(), w.bootstrapOpts("dv"))
	if err != nil || again.DeployTokenNew || len(again.Warnings) == 0 {
		t.Fatalf("a re-run without deploy token rights: %v %+v", err, again)
	}
}

// TestBootstrapMergeRequestPushesNothingDirectly: with --merge-request into
// another branch than the default, nothing is committed to the default
// branch (the agent's config file) behind the reviewer's back.
func TestBootstrapMergeRequestPushesNothingDirectly(t *testing.T) {
	w := newWorld(t)
	w.withFlux(t)
	w.gl.SetFile(w.project, "prod", "README.md", []byte("prod\n"))
	before := w.commits(t)
	o := w.bootstrapOpts("mo")
	o.Branch, o.MergeRequest = "prod", true
	res, err := Bootstrap(context.Background(), w.bootstrapEnv(), o)
	if err != nil || res.MergeRequest == nil {
		t.Fatalf("--merge-request: %v %+v", err, res)
	}
	if w.commits(t) != before {
		t.Fatalf("--merge-request committed to main directly (%d commits, was %d)", w.commits(t), before)
	}
}
