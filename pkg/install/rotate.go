package install

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// RotateResult says what rotation did.
type RotateResult struct {
	OldTokenID int64   `json:"oldTokenID"`
	NewTokenID int64   `json:"newTokenID"`
	Phases     []Phase `json:"phases"`
}

// Rotate replaces the agent's token without downtime: a new token goes into
// the Secret, the Deployment rolls (its pod template carries the token's
// checksum; the rolling update never goes below the desired replicas), and
// once agentk is connected with the new token the old one is revoked. If the
// rollout or the connection fails, the Secret and Deployment are put back,
// the old token stays and the new one is revoked.
func Rotate(ctx context.Context, env Env, o Options) (res *RotateResult, err error) {
	res = &RotateResult{}
	ph := &phases{env: env, start: time.Now()}
	defer func() { res.Phases = ph.list }()
	cur, err := current(ctx, env, o.Input)
	if err != nil {
		return res, err
	}
	if cur.tokenID == 0 {
		return res, fmt.Errorf("the token Secret names no token ID (annotation %s): reinstall with 'kubectl gitlab-agent install %s' so that its token is known", TokenIDAnnotation, o.Name)
	}
	res.OldTokenID = cur.tokenID
	a, err := env.GitLab.FindAgent(ctx, o.Project, gitlab.AgentRef{Name: o.Name})
	if err != nil {
		return res, err
	}
	if err := makeRoom(ctx, env, o.Project, a, cur.tokenID, o.Yes); err != nil {
		return res, err
	}
	var nt *gitlab.NewToken
	if err := ph.run("create token", func() (err error) {
		nt, err = env.GitLab.CreateToken(ctx, o.Project, a, tokenName(), "rotated by kubectl gitlab-agent")
		return err
	}); err != nil {
		return res, err
	}
	res.NewTokenID = nt.ID
	env.say("created token %d for agent %q", nt.ID, o.Name)
	in := o.withCurrent(cur, nt.Secret, nt.ID)
	// Only if nobody wrote the Secret since it was read.
	if err := claimSecret(ctx, env, in, nt, cur.secretRV); err != nil {
		left := "nothing else changed"
		if errors.Is(err, kube.ErrSecretChanged) {
			err = fmt.Errorf("the agent's token Secret changed during the rotation (another rotation or install?): run it again")
		} else {
			err = fmt.Errorf("writing the new token into the Secret: %w", err)
		}
		return res, revokeNew(env, o.Project, a, nt, err, left)
	}

	rollback := func(cause error) error {
		// Put the old token back with its own context: ctx may be done.
		bctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		old := o.withCurrent(cur, cur.token, cur.tokenID)
		targets, _, rerr := renderAndDiff(bctx, env, old, cur.tokenID)
		if rerr == nil {
			rerr = env.Kube.ApplyAll(bctx, targets, kube.FieldManager)
		}
		left := fmt.Sprintf("the old token %d stays active", cur.tokenID)
		if rerr != nil {
			left += fmt.Sprintf(", but putting it back in the Secret failed (%v): run 'kubectl gitlab-agent upgrade %s' once the cluster answers", rerr, o.Name)
		} else {
			left += " and is back in the Secret"
		}
		return revokeNew(env, o.Project, a, nt, cause, left)
	}

	if err := ph.run("apply", func() error {
		targets, _, err := renderAndDiff(ctx, env, in, nt.ID)
		if err != nil {
			return err
		}
		return env.Kube.ApplyAll(ctx, targets, kube.FieldManager)
	}); err != nil {
		return res, rollback(fmt.Errorf("updating the Secret and Deployment: %w", err))
	}
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := ph.run("rollout", func() error { return waitRollout(wctx, env, in) }); err != nil {
		return res, rollback(err)
	}
	if err := ph.run("connection", func() error {
		return waitConnected(wctx, env, o.Project, a, nt.ID, ph.start, false, in)
	}); err != nil {
		return res, rollback(err)
	}
	if err := ph.run("revoke old token", func() error {
		return env.GitLab.RevokeToken(ctx, o.Project, a, cur.tokenID)
	}); err != nil {
		return res, fmt.Errorf("the agent runs with the new token %d, but revoking the old token %d failed: %w; revoke it with 'kubectl gitlab-agent token revoke %s %d'", nt.ID, cur.tokenID, err, o.Name, cur.tokenID)
	}
	env.say("revoked the old token %d; agent %q runs with token %d", cur.tokenID, o.Name, nt.ID)
	return res, nil
}
