package cmd

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// rotateArgs: token rotate takes NAME, or --all and no NAME.
func rotateArgs(cmd *cobra.Command, args []string) error {
	all, _ := cmd.Flags().GetBool("all")
	switch {
	case all && len(args) > 0:
		return fmt.Errorf("NAME and --all exclude each other: give NAME to rotate one agent's token, or --all for every agent of the project")
	case !all && len(args) != 1:
		return fmt.Errorf("%s needs NAME, or --all for every agent of the project, got %d argument(s) (see '%s --help')", cmd.CommandPath(), len(args), cmd.CommandPath())
	}
	return nil
}

// allAgents stands for the agent's name in what --all reads before it
// knows the agents: each rotation takes its agent's name and namespace.
const allAgents = "all"

// Complete reads --older-than first, then what every rotation takes.
func (o *TokenRotateOptions) Complete(cmd *cobra.Command, args []string) error {
	if !o.All {
		if cmd.Flags().Changed("older-than") {
			return fmt.Errorf("--older-than goes with --all: a single rotation (NAME) happens whatever its token's age")
		}
		return o.lifecycle.Complete(cmd, args)
	}
	var err error
	if o.olderThan, err = parseAge(o.OlderThan); err != nil {
		return err
	}
	o.namespace = namespaceFlag(cmd, o.Kube)
	return o.complete(cmd, allAgents, true)
}

var daysRE = regexp.MustCompile(`^([0-9]+)d$`)

// parseAge reads --older-than: days ("90d") or a Go duration ("36h");
// "" is no bound.
func parseAge(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	var d time.Duration
	if m := daysRE.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 100*365 {
			return 0, fmt.Errorf("invalid --older-than %q: at most %d days", s, 100*365)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("invalid --older-than %q: give days (90d) or a duration (36h)", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("invalid --older-than %q: it must be more than 0 (90d, 36h)", s)
	}
	return d, nil
}

// rotateAll rotates every agent's old token and prints a line for each; one
// that failed makes the exit code 1.
func (o *TokenRotateOptions) rotateAll(ctx context.Context) error {
	res, err := install.RotateAll(ctx, o.env, install.RotateAllOptions{Options: o.opts, Namespace: o.namespace, OlderThan: o.olderThan})
	if err != nil {
		return o.finish("rotation", err, nil)
	}
	var failed []string
	for _, r := range res.Agents {
		if r.Err != nil {
			r.Reason = o.explain(r.Err).Error()
			failed = append(failed, fmt.Sprintf("%q", r.Agent))
		}
	}
	if err := o.finish("rotation", nil, rotateAllResult{res}); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("the rotation of %d of %d agents failed (%s): see each one's reason above", len(failed), len(res.Agents), strings.Join(failed, ", "))
	}
	return nil
}

// rotateAllResult is what token rotate --all prints.
type rotateAllResult struct {
	*install.RotateAllResult
}

// WriteText writes a line per agent (its namespace, what was done and
// why), then the counts.
func (r rotateAllResult) WriteText(w io.Writer, p *ui.Painter) error {
	rotated := install.Rotated
	if r.DryRun != install.DryRunNone {
		rotated = "would rotate"
	}
	t := &ui.Table{Headers: []string{"agent", "namespace", "result", "why"}, Color: p.Colors()}
	styles := map[string]ui.Style{install.Rotated: ui.Good, install.Kept: ui.Plain, install.Skipped: ui.Warn, install.Failed: ui.Bad}
	for _, a := range r.Agents {
		ns, result, why := a.Namespace, a.Result, a.Reason
		if ns == "" {
			ns = "<none>"
		}
		if result == install.Rotated {
			result = rotated
			if a.NewTokenID != 0 {
				why += fmt.Sprintf("; it runs with token %d now", a.NewTokenID)
			}
		}
		t.Rows = append(t.Rows, []ui.Cell{ui.C(a.Agent), ui.C(ns), ui.S(result, styles[a.Result]), ui.C(why)})
	}
	if len(r.Agents) > 0 {
		if err := t.Write(w); err != nil {
			return err
		}
	}
	bound := "any age"
	if r.OlderThan > 0 {
		bound = "older than " + install.Days(r.OlderThan)
	}
	_, err := fmt.Fprintf(w, "%s %d (tokens %s), kept %d, skipped %d, failed %d\n", rotated, r.Rotated, bound, r.Kept, r.Skipped, r.Failed)
	return err
}
