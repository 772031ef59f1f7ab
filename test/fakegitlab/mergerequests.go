package fakegitlab

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// Merge requests within one project, as lib/api/merge_requests.rb answers:
// branches that do not exist are a 422, a second open merge request for the
// same source and target a 409 whose message is an array
// (errors[:validate_branches], rendered by conflict!).

// MergeRequest is a merge request.
type MergeRequest struct {
	ID, IID, ProjectID         int64
	Title, Description         string
	SourceBranch, TargetBranch string
	State                      string // opened, closed, merged
	RemoveSourceBranch         bool
	AuthorID                   int64
	CreatedAt, UpdatedAt       time.Time
}

// MergeRequests lists the project's merge requests, oldest first.
func (s *Server) MergeRequests(projectID int64) []MergeRequest {
	return pick(s, s.mrs, func(m *MergeRequest) bool { return m.ProjectID == projectID })
}

// SetMergeRequestState closes or merges a merge request, as a user would.
func (s *Server) SetMergeRequestState(projectID, iid int64, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.mrs {
		if m.ProjectID == projectID && m.IID == iid {
			m.State, m.UpdatedAt = state, s.now()
		}
	}
}

func (s *Server) mrJSON(p *Project, m *MergeRequest) map[string]any {
	sha := ""
	if g, err := s.repo(p); err == nil {
		sha, _, _ = g.branchTip(m.SourceBranch)
	}
	author := map[string]any{"id": m.AuthorID}
	if u := s.users[m.AuthorID]; u != nil {
		author = userJSON(u)
	}
	ref := "!" + itoa(m.IID)
	return map[string]any{
		"id": m.ID, "iid": m.IID, "project_id": p.ID, "title": m.Title, "description": m.Description,
		"state": m.State, "created_at": m.CreatedAt.UTC(), "updated_at": m.UpdatedAt.UTC(),
		"merged_at": nil, "closed_at": nil, "target_branch": m.TargetBranch, "source_branch": m.SourceBranch,
		"source_project_id": p.ID, "target_project_id": p.ID, "author": author,
		"draft": false, "work_in_progress": false, "merge_status": "can_be_merged", "detailed_merge_status": "mergeable",
		"sha": sha, "force_remove_source_branch": m.RemoveSourceBranch, "has_conflicts": false, "user_notes_count": 0,
		"references": map[string]any{"short": ref, "relative": ref, "full": p.PathWithNS + ref},
		"web_url":    s.URL + "/" + p.PathWithNS + "/-/merge_requests/" + itoa(m.IID),
	}
}

func (s *Server) listMergeRequests(w http.ResponseWriter, r *http.Request, _ *User, p *Project) {
	q := r.URL.Query()
	state := q.Get("state")
	var list []*MergeRequest
	for _, m := range s.mrs {
		switch {
		case m.ProjectID != p.ID:
		case state != "" && state != "all" && state != m.State:
		case q.Get("source_branch") != "" && q.Get("source_branch") != m.SourceBranch:
		case q.Get("target_branch") != "" && q.Get("target_branch") != m.TargetBranch:
		default:
			list = append(list, m)
		}
	}
	// created_at, newest first, as GitLab orders by default.
	sort.Slice(list, func(i, j int) bool { return list[i].ID > list[j].ID })
	start, end := paginate(w, r, len(list))
	out := []any{}
	for _, m := range list[start:end] {
		out = append(out, s.mrJSON(p, m))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createMergeRequest(w http.ResponseWriter, r *http.Request, u *User, p *Project) {
	var body struct {
		SourceBranch       string   `json:"source_branch"`
		TargetBranch       string   `json:"target_branch"`
		Title              string   `json:"title"`
		Description        string   `json:"description"`
		RemoveSourceBranch flexBool `json:"remove_source_branch"`
	}
	bad := func(msg string) { writeJSON(w, http.StatusBadRequest, map[string]any{"error": msg}) }
	if err := decodeBody(r, &body); err != nil {
		bad("invalid body")
		return
	}
	switch {
	case body.SourceBranch == "":
		bad("source_branch is missing")
		return
	case body.TargetBranch == "":
		bad("target_branch is missing")
		return
	case body.Title == "":
		bad("title is missing")
		return
	case len(body.Description) > 1048576:
		writeError(w, http.StatusBadRequest, map[string]any{"description": []string{"is too long (maximum is 1048576 characters)"}})
		return
	}
	g := s.repoFor(w, p)
	if g == nil {
		return
	}
	var problems []string
	if body.SourceBranch == body.TargetBranch {
		problems = append(problems, "You must select different branches")
	}
	for _, b := range []struct{ what, name string }{{"Source", body.SourceBranch}, {"Target", body.TargetBranch}} {
		if _, ok, err := g.branchTip(b.name); err != nil {
			gitFailed(w, err)
			return
		} else if !ok {
			problems = append(problems, fmt.Sprintf("%s branch %q does not exist", b.what, b.name))
		}
	}
	if problems != nil {
		writeError(w, http.StatusUnprocessableEntity, problems)
		return
	}
	for _, m := range s.mrs {
		if m.ProjectID == p.ID && m.State == "opened" && m.SourceBranch == body.SourceBranch && m.TargetBranch == body.TargetBranch {
			writeError(w, http.StatusConflict, []string{"Another open merge request already exists for this source branch: !" + itoa(m.IID)})
			return
		}
	}
	var iid int64
	for _, m := range s.mrs {
		if m.ProjectID == p.ID {
			iid = max(iid, m.IID)
		}
	}
	m := &MergeRequest{ID: s.id(), IID: iid + 1, ProjectID: p.ID, Title: body.Title, Description: body.Description,
		SourceBranch: body.SourceBranch, TargetBranch: body.TargetBranch, State: "opened",
		RemoveSourceBranch: bool(body.RemoveSourceBranch), AuthorID: u.ID, CreatedAt: s.now(), UpdatedAt: s.now()}
	s.mrs[m.ID] = m
	writeJSON(w, http.StatusCreated, s.mrJSON(p, m))
}

// mergeRequest finds {iid} in p.
func (s *Server) mergeRequest(w http.ResponseWriter, r *http.Request, p *Project) *MergeRequest {
	iid, err := strconv.ParseInt(r.PathValue("iid"), 10, 64)
	if err == nil {
		for _, m := range s.mrs {
			if m.ProjectID == p.ID && m.IID == iid {
				return m
			}
		}
	}
	writeError(w, http.StatusNotFound, "404 Not found")
	return nil
}

func (s *Server) getMergeRequest(w http.ResponseWriter, r *http.Request, _ *User, p *Project) {
	if m := s.mergeRequest(w, r, p); m != nil {
		writeJSON(w, http.StatusOK, s.mrJSON(p, m))
	}
}

func (s *Server) updateMergeRequest(w http.ResponseWriter, r *http.Request, _ *User, p *Project) {
	m := s.mergeRequest(w, r, p)
	if m == nil {
		return
	}
	var body struct {
		Title              *string   `json:"title"`
		Description        *string   `json:"description"`
		TargetBranch       *string   `json:"target_branch"`
		StateEvent         *string   `json:"state_event"`
		RemoveSourceBranch *flexBool `json:"remove_source_branch"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid body"})
		return
	}
	if body.Title == nil && body.Description == nil && body.TargetBranch == nil && body.StateEvent == nil && body.RemoveSourceBranch == nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "title, description, target_branch, state_event, remove_source_branch are missing, at least one parameter must be provided"})
		return
	}
	if body.Title != nil && *body.Title == "" {
		writeError(w, http.StatusBadRequest, map[string]any{"title": []string{"can't be blank"}})
		return
	}
	if body.Title != nil {
		m.Title = *body.Title
	}
	if body.Description != nil {
		m.Description = *body.Description
	}
	if body.TargetBranch != nil {
		m.TargetBranch = *body.TargetBranch
	}
	if body.RemoveSourceBranch != nil {
		m.RemoveSourceBranch = bool(*body.RemoveSourceBranch)
	}
	if body.StateEvent != nil {
		switch *body.StateEvent {
		case "close":
			m.State = "closed"
		case "reopen":
			m.State = "opened"
		}
	}
	m.UpdatedAt = s.now()
	writeJSON(w, http.StatusOK, s.mrJSON(p, m))
}
