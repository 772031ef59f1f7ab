package gitlab

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// CommitAction is one change of a commit.
type CommitAction struct {
	Action       string // create, update, delete
	Path         string
	Content      []byte // sent base64
	LastCommitID string // optional optimistic lock for update/delete
}

// CommitOptions is a commit of several changes to one branch.
type CommitOptions struct {
	Branch      string
	StartBranch string // set when Branch is new: created from StartBranch
	Message     string
	Actions     []CommitAction
}

// Commit is a repository commit.
type Commit struct {
	ID         string    `json:"id"`
	ShortID    string    `json:"shortID"`
	Title      string    `json:"title"`
	Message    string    `json:"message"`
	AuthorName string    `json:"authorName"`
	WebURL     string    `json:"webURL"`
	CreatedAt  time.Time `json:"createdAt"`
	ParentIDs  []string  `json:"parentIDs"`
}

func commitFrom(c *gl.Commit) *Commit {
	out := &Commit{ID: c.ID, ShortID: c.ShortID, Title: c.Title, Message: c.Message, AuthorName: c.AuthorName,
		WebURL: c.WebURL, ParentIDs: c.ParentIDs}
	switch {
	case c.CreatedAt != nil:
		out.CreatedAt = *c.CreatedAt
	case c.CommittedDate != nil:
		out.CreatedAt = *c.CommittedDate
	}
	return out
}

// missing reports a 404 for what was asked: GitLab answers 404 for a
// project the token cannot see too, and that is an error, not an absence.
func missing(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Class == ClassNotFound && !strings.Contains(e.notFound, "Project Not Found")
}

// CreateCommit commits o's changes to o.Branch at once: GitLab applies all
// of them or none.
//
// The request is sent once. When its answer is lost (a 5xx from a proxy, a
// timeout, a dropped connection) GitLab may have made the commit: it did
// when the branch's tip is a commit with this exact message whose tree
// holds what was sent, and that commit is returned.
func (c *Client) CreateCommit(ctx context.Context, p ProjectRef, o CommitOptions) (*Commit, error) {
	op := fmt.Sprintf("committing %d files to %s in %s", len(o.Actions), o.Branch, p)
	if o.Branch == "" || o.Message == "" || len(o.Actions) == 0 {
		return nil, fmt.Errorf("%s: a commit needs a branch, a message and at least one change", op)
	}
	opts := &gl.CreateCommitOptions{Branch: gl.Ptr(o.Branch), CommitMessage: gl.Ptr(o.Message)}
	if o.StartBranch != "" {
		opts.StartBranch = gl.Ptr(o.StartBranch)
	}
	for _, a := range o.Actions {
		switch a.Action {
		case "create", "update", "delete":
		default:
			return nil, fmt.Errorf("%s: unknown action %q for %s (want create, update or delete)", op, a.Action, a.Path)
		}
		act := gl.FileActionValue(a.Action)
		ao := &gl.CommitActionOptions{Action: &act, FilePath: gl.Ptr(a.Path)}
		if a.Action != "delete" {
			ao.Content, ao.Encoding = gl.Ptr(base64.StdEncoding.EncodeToString(a.Content)), gl.Ptr("base64")
		}
		if a.LastCommitID != "" && a.Action != "create" {
			ao.LastCommitID = gl.Ptr(a.LastCommitID)
		}
		opts.Actions = append(opts.Actions, ao)
	}
	branches := o.Branch
	if o.StartBranch != "" {
		branches = fmt.Sprintf("%s (or its start branch %s)", o.Branch, o.StartBranch)
	}
	_, cancel, opt := c.call(ctx, once)
	gc, resp, err := c.api.Commits.CreateCommit(p.pid(), opts, opt)
	cancel()
	switch {
	case err == nil && gc != nil && gc.ID != "":
		return commitFrom(gc), nil
	case err == nil:
		err = &Error{Class: ClassBadAnswer, Status: resp.StatusCode, Op: op, Detail: "GitLab's answer holds no commit"}
	default:
		err = c.classify(op, resp, err, hints{
			forbidden: fmt.Sprintf("you need a role on %s that may push to %s (Developer; Maintainer for a protected branch), or commit to another branch", p, o.Branch),
			conflict:  fmt.Sprintf("the branch moved or its files changed since they were read (someone else committed to %s): run the command again", o.Branch),
			invalid:   fmt.Sprintf("check that %s exists in %s and holds the files to update or delete; if someone changed them meanwhile, run the command again", branches, p),
			notFound:  fmt.Sprintf("no project %s, or your token cannot see it", p),
		})
	}
	if !mayHaveHappened(err) {
		return nil, err
	}
	rctx, rcancel := cleanupContext(ctx)
	defer rcancel()
	if made := c.commitLanded(rctx, p, o); made != nil {
		return made, nil
	}
	return nil, fmt.Errorf("%w (the commit may or may not have been made: look at the history of %s in %s)", err, o.Branch, p)
}

// commitLanded is the commit o made, when the branch's tip is it: a commit
// with o's message whose tree holds what o sent (and lacks what it deleted).
func (c *Client) commitLanded(ctx context.Context, p ProjectRef, o CommitOptions) *Commit {
	tips, err := c.ListCommits(ctx, p, o.Branch, "", 1)
	if err != nil || len(tips) != 1 || strings.TrimRight(tips[0].Message, "\n") != strings.TrimRight(o.Message, "\n") {
		return nil
	}
	tip := &tips[0]
	for _, a := range o.Actions {
		f, found, err := c.GetFile(ctx, p, a.Path, tip.ID)
		switch {
		case err != nil:
			return nil
		case a.Action == "delete" && found:
			return nil
		case a.Action != "delete" && (!found || !bytes.Equal(f.Content, a.Content)):
			return nil
		}
	}
	return tip
}

// ListCommits lists ref's commits (the default branch's when ref is ""),
// newest first, those that changed path when it is given; at most limit
// (limit <= 0: all, up to 10000).
func (c *Client) ListCommits(ctx context.Context, p ProjectRef, ref, path string, limit int) ([]Commit, error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	lo := &gl.ListCommitsOptions{}
	if ref != "" {
		lo.RefName = gl.Ptr(ref)
	}
	if path != "" {
		lo.Path = gl.Ptr(path)
	}
	max := maxListed
	if limit > 0 {
		max = min(limit, maxListed)
	}
	all, resp, err := allPages(&lo.ListOptions, max, func(c *gl.Commit) string { return c.ID }, func() ([]*gl.Commit, *gl.Response, error) {
		return c.api.Commits.ListCommits(p.pid(), lo, opt)
	})
	if err != nil {
		return nil, c.classify(fmt.Sprintf("listing the commits of %s in %s", orDefault(ref, "the default branch"), p), resp, err, hints{
			forbidden: fmt.Sprintf("you need at least the Reporter role on %s to read its history", p),
		})
	}
	out := make([]Commit, 0, min(len(all), max))
	for _, gc := range all {
		if len(out) == max {
			break
		}
		out = append(out, *commitFrom(gc))
	}
	return out, nil
}

// TreeEntry is a file or directory of a repository's tree.
type TreeEntry struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"` // blob or tree
	Path string `json:"path"`
	Mode string `json:"mode"`
}

// ListTree lists the directory path ("" the root) at ref, with everything
// below it when recursive. found is false when there is no such directory
// (GitLab since 17.7 answers 404, before it answered []) or ref does not
// exist.
func (c *Client) ListTree(ctx context.Context, p ProjectRef, path, ref string, recursive bool) (entries []TreeEntry, found bool, err error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	lo := &gl.ListTreeOptions{Recursive: gl.Ptr(recursive)}
	if path != "" {
		lo.Path = gl.Ptr(path)
	}
	if ref != "" {
		lo.Ref = gl.Ptr(ref)
	}
	all, resp, err := allPages(&lo.ListOptions, maxListed, func(t *gl.TreeNode) string { return t.Path }, func() ([]*gl.TreeNode, *gl.Response, error) {
		return c.api.Repositories.ListTree(p.pid(), lo, opt)
	})
	if err != nil {
		err = c.classify(fmt.Sprintf("listing %s at %s in %s", orDefault(path, "the repository's files"), orDefault(ref, "the default branch"), p), resp, err, hints{
			forbidden: fmt.Sprintf("you need at least the Reporter role on %s to read its files", p),
		})
		if missing(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	if len(all) == 0 {
		return nil, false, nil
	}
	out := make([]TreeEntry, 0, len(all))
	for _, t := range all {
		out = append(out, TreeEntry{ID: t.ID, Name: t.Name, Type: t.Type, Path: t.Path, Mode: t.Mode})
	}
	return out, true, nil
}

// Branch is a repository branch.
type Branch struct {
	Name      string `json:"name"`
	CommitID  string `json:"commitID"`
	Protected bool   `json:"protected"`
}

// GetBranch looks the branch up; found is false when it does not exist.
func (c *Client) GetBranch(ctx context.Context, p ProjectRef, name string) (b *Branch, found bool, err error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	gb, resp, err := c.api.Branches.GetBranch(p.pid(), name, opt)
	if err != nil {
		err = c.classify(fmt.Sprintf("looking up branch %s in %s", name, p), resp, err, hints{
			forbidden: fmt.Sprintf("you need at least the Reporter role on %s to read its branches", p),
		})
		if missing(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	b = &Branch{Name: gb.Name, Protected: gb.Protected}
	if gb.Commit != nil {
		b.CommitID = gb.Commit.ID
	}
	return b, true, nil
}
