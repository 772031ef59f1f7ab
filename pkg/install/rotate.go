package install

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// RotateResult says what rotation did, or with DryRun would do (Plan).
type RotateResult struct {
	OldTokenID int64   `json:"oldTokenID"`
	NewTokenID int64   `json:"newTokenID"`
	Phases     []Phase `json:"phases"`
	Plan       *Plan   `json:"plan,omitempty"`
	// Agentk is the agentk version and layout the agent runs, kept.
	Agentk *AgentVersion `json:"agentk,omitempty"`
}

// Rotate replaces the agent's token without downtime: a new token goes into
// the Secret, the Deployment rolls (its pod template carries the token's
// checksum; the rolling update never goes below the desired replicas), and
// once agentk is connected with the new token the old one is revoked.
// agentk's version and the chart layout stay as the agent runs unless
// o.Input names them (image.tag, ChartAsked), and so do the values
// withCurrent carries. If the
// rollout or the connection fails, the Secret and Deployment are put back,
// the old token stays and the new one is revoked; if they cannot be put
// back, both tokens stay active and the error says what to run.
func Rotate(ctx context.Context, env Env, o Options) (*RotateResult, error) {
	r := &rotation{action: action{env: env, dryRun: o.DryRun}, o: o, res: &RotateResult{}, start: time.Now()}
	err := r.run(ctx)
	r.res.Phases = r.phases
	return r.res, err
}

// rotation is one run of Rotate.
type rotation struct {
	action
	o     Options
	res   *RotateResult
	start time.Time
	cur   *installed
	agent *gitlab.Agent
	nt    *gitlab.NewToken
}

func (r *rotation) run(ctx context.Context) error {
	var err error
	if r.cur, err = r.current(ctx, r.o.Input); err != nil {
		return err
	}
	v, err := rotateVersion(&r.o, r.cur)
	if err != nil {
		return err
	}
	r.res.Agentk = &v
	if r.cur.tokenID == 0 {
		return fmt.Errorf("the token Secret names no token ID (annotation %s): reinstall with 'kubectl gitlab-agent install %s' so that its token is known", TokenIDAnnotation, r.o.Name)
	}
	r.res.OldTokenID = r.cur.tokenID
	if r.agent, err = r.env.GitLab.FindAgent(ctx, r.o.Project, gitlab.AgentRef{Name: r.o.Name}); err != nil {
		return err
	}
	if err := r.makeRoom(ctx, r.o.Project, r.agent, r.cur.tokenID, r.o.Yes); err != nil {
		return err
	}
	if r.planning() {
		return r.planned(ctx)
	}
	r.say(v.Line())
	if err := r.step("create token", func() (err error) {
		r.nt, err = r.env.GitLab.CreateToken(ctx, r.o.Project, r.agent, tokenName(), "rotated by kubectl gitlab-agent")
		return err
	}); err != nil {
		return err
	}
	r.res.NewTokenID = r.nt.ID
	r.say(fmt.Sprintf("created token %d for agent %q", r.nt.ID, r.o.Name))
	in := r.o.withCurrent(r.cur, r.nt.Secret)
	// Only if nobody wrote the Secret since it was read.
	if err := r.claimSecret(ctx, in, r.nt, r.cur.secretRV); err != nil {
		if errors.Is(err, kube.ErrSecretChanged) {
			err = errors.New("the agent's token Secret changed during the rotation (another rotation or install?): run it again")
		} else {
			err = fmt.Errorf("writing the new token into the Secret: %w", err)
		}
		return fmt.Errorf("%w; nothing else changed", r.env.GitLab.RevokeCreated(ctx, r.o.Project, r.agent, r.nt, err))
	}
	if err := r.roll(ctx); err != nil {
		return r.rollback(ctx, err)
	}
	if err := r.step("revoke old token", func() error {
		return r.env.GitLab.RevokeToken(ctx, r.o.Project, r.agent, r.cur.tokenID)
	}); err != nil {
		return fmt.Errorf("the agent runs with the new token %d, but revoking the old token %d failed: %w; revoke it with 'kubectl gitlab-agent token revoke %s %d'", r.nt.ID, r.cur.tokenID, err, r.o.Name, r.cur.tokenID)
	}
	r.say(fmt.Sprintf("revoked the old token %d; agent %q runs with token %d", r.cur.tokenID, r.o.Name, r.nt.ID))
	return nil
}

// planned is a dry run's plan: the token GitLab would make, the Secret and
// Deployment as they would be with it, the old token revoked.
func (r *rotation) planned(ctx context.Context) error {
	r.plan = append(r.plan, fmt.Sprintf("create a token for agent %q", r.o.Name))
	var out *rendered
	if err := r.step("diff", func() (err error) {
		out, err = r.render(ctx, r.o.withCurrent(r.cur, "<new token>"), 0)
		return err
	}); err != nil {
		return err
	}
	r.sayBeyondToken(out)
	r.plan = append(r.plan, fmt.Sprintf("revoke the old token %d once agentk is connected with the new one", r.cur.tokenID))
	r.res.Plan = &Plan{GitLab: r.plan, Cluster: out.diff, Server: r.dryRun == DryRunServer, Agentk: r.res.Agentk}
	return nil
}

// roll applies the Deployment with the new token and waits until agentk
// connects with it.
func (r *rotation) roll(ctx context.Context) error {
	in := r.o.withCurrent(r.cur, r.nt.Secret)
	var out *rendered
	if err := r.step("render", func() (err error) {
		out, err = r.render(ctx, in, r.nt.ID)
		return err
	}); err != nil {
		return fmt.Errorf("updating the Secret and Deployment: %w", err)
	}
	r.sayBeyondToken(out)
	if err := r.apply(ctx, out); err != nil {
		return fmt.Errorf("updating the Secret and Deployment: %w", err)
	}
	return r.awaitReady(ctx, in, r.o.Timeout, &connection{ref: r.o.Project, agent: r.agent, tokenID: r.nt.ID, created: true, since: r.start})
}

// rollback puts the old token back into the Secret and Deployment, with a
// context of its own (ctx may be done), trying a few times, and revokes the
// new one. When they cannot be put back the Secret may still hold the new
// token and pods may run with either, so both stay active: revoking one
// could leave agentk with a dead token.
func (r *rotation) rollback(ctx context.Context, cause error) error {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	old := r.o.withCurrent(r.cur, r.cur.token)
	// Waits of a tenth of --timeout (at most 2 s), then twice that.
	wait := min(2*time.Second, r.o.Timeout/10)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 && !sleep(bctx, time.Duration(attempt)*wait) {
			break
		}
		var out *rendered
		if out, err = r.render(bctx, old, r.cur.tokenID); err == nil {
			err = r.env.Cluster.ApplyAll(bctx, out.targets, kube.FieldManager)
		}
		if err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("%w; putting the old token %d back in the Secret and Deployment failed too (%v), so it and the new token %d both stay active: once the cluster answers, rotate again ('kubectl gitlab-agent token rotate %s'): it revokes the one the Secret does not hold to make room, and the other once agentk runs with a new token",
			cause, r.cur.tokenID, err, r.nt.ID, r.o.Name)
	}
	return fmt.Errorf("%w; the old token %d stays active and is back in the Secret", r.env.GitLab.RevokeCreated(ctx, r.o.Project, r.agent, r.nt, cause), r.cur.tokenID)
}
