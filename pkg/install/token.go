package install

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// ConfirmationError is a step that needs the user's consent (Options.Yes)
// to go on; Would says what it would then do.
type ConfirmationError struct {
	Err   error
	Would string
}

func (e *ConfirmationError) Error() string {
	return fmt.Sprintf("%v; with consent this would %s", e.Err, e.Would)
}

func (e *ConfirmationError) Unwrap() error { return e.Err }

// tokenName names a token after when and where it was made, with a random
// part unique to the attempt: after a lost answer the token is found by it.
func tokenName() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "kubectl-gitlab-agent-" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
	if host, _ := os.Hostname(); host != "" {
		name += "-" + host
	}
	if len(name) > 255 {
		name = name[:255]
	}
	return name
}

// secretToken reads the token ID annotation and the token of a Secret.
func secretToken(s *corev1.Secret) (int64, string) {
	if s == nil {
		return 0, ""
	}
	id, _ := strconv.ParseInt(s.Annotations[TokenIDAnnotation], 10, 64)
	return id, strings.TrimSpace(string(s.Data["token"]))
}

// held is the token the cluster's Secret holds, and the Secret's
// resourceVersion ("" when there is no Secret) for a later claimSecret.
type held struct {
	id    int64
	token string
	rv    string
	// active: GitLab lists the token as active.
	active bool
}

// heldToken reads the agent's Secret and asks GitLab whether its token is
// still active.
func (a *action) heldToken(ctx context.Context, ref gitlab.ProjectRef, ag *gitlab.Agent, in manifest.Input) (held, error) {
	s, err := a.env.Cluster.GetSecret(ctx, in.Namespace, manifest.SecretName(in))
	if err != nil {
		return held{}, fmt.Errorf("reading the token Secret: %w", err)
	}
	var h held
	if s != nil {
		h.rv = s.ResourceVersion
	}
	h.id, h.token = secretToken(s)
	if h.id == 0 || h.token == "" {
		return h, nil
	}
	active, err := a.env.GitLab.ListTokens(ctx, ref, ag)
	if err != nil {
		return h, err
	}
	for _, t := range active {
		if t.ID == h.id {
			h.active = true
		}
	}
	return h, nil
}

// awaitClaimedToken looks at the agent's Secret for up to d for an active
// token that another install wrote.
func (a *action) awaitClaimedToken(ctx context.Context, ref gitlab.ProjectRef, ag *gitlab.Agent, in manifest.Input, d time.Duration) (held, bool) {
	deadline := time.Now().Add(d)
	for {
		if h, err := a.heldToken(ctx, ref, ag, in); err == nil && h.active {
			return h, true
		}
		if time.Now().After(deadline) || !sleep(ctx, a.poll(200*time.Millisecond)) {
			return held{}, false
		}
	}
}

// makeRoom frees a slot at GitLab's two-token limit: with yes it revokes the
// least recently used token other than keep; without, it stops and says
// which it would revoke.
func (a *action) makeRoom(ctx context.Context, ref gitlab.ProjectRef, ag *gitlab.Agent, keep int64, yes bool) error {
	tokens, err := a.env.GitLab.ListTokensWithLastUse(ctx, ref, ag)
	if err != nil || len(tokens) < gitlab.MaxActiveTokens {
		return err
	}
	var victim *gitlab.Token
	for i := len(tokens) - 1; i >= 0; i-- { // least recently used last
		if tokens[i].ID != keep {
			victim = tokens[i]
			break
		}
	}
	limit := &gitlab.TokenLimitError{Agent: ag.Name, Tokens: tokens}
	if victim == nil {
		return limit
	}
	if !yes {
		return &ConfirmationError{Err: limit, Would: fmt.Sprintf("revoke token %d %q", victim.ID, victim.Name)}
	}
	if a.planning() {
		a.plan = append(a.plan, fmt.Sprintf("revoke token %d %q to stay within GitLab's two-token limit", victim.ID, victim.Name))
		return nil
	}
	if err := a.env.GitLab.RevokeToken(ctx, ref, ag, victim.ID); err != nil {
		return err
	}
	a.say(fmt.Sprintf("revoked token %d %q to stay within GitLab's two-token limit", victim.ID, victim.Name))
	return nil
}

// claimSecret writes the agent's token Secret with the new token t, only if
// the Secret is still as read (rv; "" when there was none): see
// Cluster.ClaimSecret. A new install's Namespace is applied first.
func (a *action) claimSecret(ctx context.Context, in manifest.Input, t *gitlab.NewToken, rv string) error {
	in.Values.Config.Token = t.Secret
	if err := a.keepPrivateJWT(ctx, &in); err != nil {
		return err
	}
	out, err := manifest.Render(in)
	if err != nil {
		return err
	}
	var secret, ns []kube.Manifest
	for _, obj := range out.Objects {
		u := &unstructured.Unstructured{Object: obj}
		switch {
		case u.GetKind() == "Secret" && u.GetName() == manifest.SecretName(in):
			annotateTokenID(u, t.ID)
			secret, err = kube.FromObjects([]map[string]any{u.Object}, "render "+in.Name)
		case u.GetKind() == "Namespace" && rv == "":
			ns, err = kube.FromObjects([]map[string]any{u.Object}, "render "+in.Name)
		}
		if err != nil {
			return err
		}
	}
	if secret == nil {
		return fmt.Errorf("the rendered objects hold no token Secret %s", manifest.SecretName(in))
	}
	if ns != nil {
		targets, err := a.env.Cluster.MapAll(ns, in.Namespace)
		if err != nil {
			return err
		}
		if err := a.env.Cluster.ApplyAll(ctx, targets, kube.FieldManager); err != nil {
			return fmt.Errorf("creating namespace %s: %w", in.Namespace, err)
		}
	}
	targets, err := a.env.Cluster.MapAll(secret, in.Namespace)
	if err != nil {
		return err
	}
	obj, err := targets[0].Object()
	if err != nil {
		return err
	}
	return a.env.Cluster.ClaimSecret(ctx, targets[0], obj, rv, kube.FieldManager)
}

// annotateTokenID records on the token Secret which GitLab token it holds.
func annotateTokenID(u *unstructured.Unstructured, id int64) {
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[TokenIDAnnotation] = strconv.FormatInt(id, 10)
	u.SetAnnotations(ann)
}
