package gitlab

import (
	"context"
	"fmt"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// MergeRequest is a merge request within one project.
type MergeRequest struct {
	ID           int64  `json:"id"`
	IID          int64  `json:"iid"`
	State        string `json:"state"`
	Title        string `json:"title"`
	Description  string `json:"description"`
	SourceBranch string `json:"sourceBranch"`
	TargetBranch string `json:"targetBranch"`
	WebURL       string `json:"webURL"`
	SHA          string `json:"sha"` // the source branch's tip
}

func mergeRequestFrom(m *gl.BasicMergeRequest) *MergeRequest {
	return &MergeRequest{ID: m.ID, IID: m.IID, State: m.State, Title: m.Title, Description: m.Description,
		SourceBranch: m.SourceBranch, TargetBranch: m.TargetBranch, WebURL: m.WebURL, SHA: m.SHA}
}

// FindOpenMergeRequest finds the open merge request from source into
// target; found is false when there is none.
func (c *Client) FindOpenMergeRequest(ctx context.Context, p ProjectRef, source, target string) (mr *MergeRequest, found bool, err error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	lo := &gl.ListProjectMergeRequestsOptions{State: gl.Ptr("opened"), SourceBranch: gl.Ptr(source), TargetBranch: gl.Ptr(target)}
	lo.PerPage = 100
	list, resp, err := c.api.MergeRequests.ListProjectMergeRequests(p.pid(), lo, opt)
	if err != nil {
		return nil, false, c.classify(fmt.Sprintf("looking for an open merge request from %s into %s in %s", source, target, p), resp, err, hints{
			forbidden: fmt.Sprintf("you need at least the Reporter role on %s to see its merge requests", p),
		})
	}
	for _, m := range list {
		// GitLab filters already; a GitLab that ignored a filter must
		// not make another merge request ours.
		if m.State == "opened" && m.SourceBranch == source && m.TargetBranch == target {
			return mergeRequestFrom(m), true, nil
		}
	}
	return nil, false, nil
}

// CreateMergeRequest opens a merge request from source into target. When
// one is open already (GitLab's 409), that one is returned instead, as it
// is; UpdateMergeRequest changes its text.
//
// The request is sent once; when its answer is lost, an open merge request
// from source into target with this title found then is the one made.
func (c *Client) CreateMergeRequest(ctx context.Context, p ProjectRef, source, target, title, description string) (*MergeRequest, error) {
	op := fmt.Sprintf("opening a merge request from %s into %s in %s", source, target, p)
	o := &gl.CreateMergeRequestOptions{SourceBranch: gl.Ptr(source), TargetBranch: gl.Ptr(target), Title: gl.Ptr(title)}
	if description != "" {
		o.Description = gl.Ptr(description)
	}
	_, cancel, opt := c.call(ctx, once)
	m, resp, err := c.api.MergeRequests.CreateMergeRequest(p.pid(), o, opt)
	cancel()
	switch {
	case err == nil && m != nil && m.IID != 0:
		return mergeRequestFrom(&m.BasicMergeRequest), nil
	case err == nil:
		err = &Error{Class: ClassBadAnswer, Status: resp.StatusCode, Op: op, Detail: "GitLab's answer holds no merge request"}
	default:
		err = c.classify(op, resp, err, hints{
			forbidden: fmt.Sprintf("you need at least the Developer role on %s to open merge requests", p),
			invalid:   fmt.Sprintf("check that branches %s and %s exist in %s and differ", source, target, p),
			conflict:  fmt.Sprintf("a merge request from %s into %s is open already", source, target),
		})
	}
	switch {
	case IsClass(err, ClassConflict) && ctx.Err() == nil:
		if open, found, ferr := c.FindOpenMergeRequest(ctx, p, source, target); ferr == nil && found {
			return open, nil
		}
	case mayHaveHappened(err):
		rctx, rcancel := cleanupContext(ctx)
		defer rcancel()
		if open, found, ferr := c.FindOpenMergeRequest(rctx, p, source, target); ferr == nil && found && open.Title == title {
			return open, nil
		}
		return nil, fmt.Errorf("%w (the merge request may or may not have been opened: look for one from %s into %s)", err, source, target)
	}
	return nil, err
}

// UpdateMergeRequest sets the title and description of merge request iid.
func (c *Client) UpdateMergeRequest(ctx context.Context, p ProjectRef, iid int64, title, description string) (*MergeRequest, error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	m, resp, err := c.api.MergeRequests.UpdateMergeRequest(p.pid(), iid, &gl.UpdateMergeRequestOptions{
		Title: gl.Ptr(title), Description: gl.Ptr(description),
	}, opt)
	op := fmt.Sprintf("updating merge request !%d in %s", iid, p)
	if err == nil && m == nil {
		return nil, &Error{Class: ClassBadAnswer, Status: resp.StatusCode, Op: op, Detail: "GitLab's answer holds no merge request"}
	}
	if err != nil {
		return nil, c.classify(op, resp, err, hints{
			forbidden: fmt.Sprintf("you need at least the Developer role on %s (or to be the merge request's author) to change it", p),
			notFound:  fmt.Sprintf("no merge request !%d in %s", iid, p),
		})
	}
	return mergeRequestFrom(&m.BasicMergeRequest), nil
}
