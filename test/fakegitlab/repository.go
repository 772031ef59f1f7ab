package fakegitlab

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The repository APIs (files, commits, tree, branches, archive) over the
// project's git repository, as lib/api/files.rb, commits.rb, branches.rb
// and repositories.rb answer them.

// repoFor is p's repository; it answers 500 itself when git fails.
func (s *Server) repoFor(w http.ResponseWriter, p *Project) *gitRepo {
	g, err := s.repo(p)
	if err != nil {
		gitFailed(w, err)
		return nil
	}
	return g
}

// gitFailed answers a git failure as GitLab answers a Gitaly one.
func gitFailed(w http.ResponseWriter, err error) {
	writeError(w, http.StatusInternalServerError, "500 Internal Server Error: "+err.Error())
}

func (s *Server) getFile(w http.ResponseWriter, r *http.Request, _ *User, p *Project) {
	ref := r.URL.Query().Get("ref")
	if ref == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "ref is missing"})
		return
	}
	g := s.repoFor(w, p)
	if g == nil {
		return
	}
	path := r.PathValue("path")
	commit, ok, err := g.resolve(ref)
	if err != nil {
		gitFailed(w, err)
		return
	}
	if !ok {
		errNotFound(w, "File")
		return
	}
	content, entry, ok, err := g.readFile(commit, path)
	if err != nil {
		gitFailed(w, err)
		return
	}
	if !ok {
		errNotFound(w, "File")
		return
	}
	last, err := g.lastCommit(commit, path)
	if err != nil {
		gitFailed(w, err)
		return
	}
	sum := sha256.Sum256(content)
	h := w.Header()
	h.Set("X-Gitlab-File-Name", path[strings.LastIndex(path, "/")+1:])
	h.Set("X-Gitlab-File-Path", path)
	h.Set("X-Gitlab-Size", strconv.Itoa(len(content)))
	h.Set("X-Gitlab-Encoding", "base64")
	h.Set("X-Gitlab-Content-Sha256", hex.EncodeToString(sum[:]))
	h.Set("X-Gitlab-Ref", ref)
	h.Set("X-Gitlab-Blob-Id", entry.ID)
	h.Set("X-Gitlab-Last-Commit-Id", last)
	h.Set("X-Gitlab-Commit-Id", commit)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"file_name": path[strings.LastIndex(path, "/")+1:], "file_path": path, "size": len(content),
		"encoding": "base64", "content": base64.StdEncoding.EncodeToString(content),
		"content_sha256": hex.EncodeToString(sum[:]), "ref": ref, "blob_id": entry.ID,
		"commit_id": commit, "last_commit_id": last, "execute_filemode": entry.Mode == "100755",
	})
}

// userIdent is u as a commit's author or committer.
func userIdent(u *User) ident {
	return ident{Name: u.Name, Email: u.Username + "@example.com"}
}

// canPush is GitLab's push check: Developer, Maintainer on a protected
// branch.
func canPush(p *Project, u *User, branch string) bool {
	need := Developer
	if p.ProtectedBranches[branch] {
		need = Maintainer
	}
	return p.Members[u.ID] >= need
}

func (s *Server) writeFile(w http.ResponseWriter, r *http.Request, u *User, p *Project) {
	var body struct {
		Branch        string `json:"branch"`
		Content       string `json:"content"`
		Encoding      string `json:"encoding"`
		CommitMessage string `json:"commit_message"`
		LastCommitID  string `json:"last_commit_id"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid body"})
		return
	}
	switch {
	case body.Branch == "":
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "branch is missing"})
		return
	case body.CommitMessage == "":
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "commit_message is missing"})
		return
	}
	if !canPush(p, u, body.Branch) {
		writeError(w, http.StatusForbidden, "You are not allowed to push into this branch")
		return
	}
	g := s.repoFor(w, p)
	if g == nil {
		return
	}
	tip, exists, err := g.branchTip(body.Branch)
	if err != nil {
		gitFailed(w, err)
		return
	}
	if !exists {
		if empty, err := g.empty(); err != nil || !empty || !validBranchName(body.Branch) {
			writeError(w, http.StatusBadRequest, "You can only create or edit files when you are on a branch")
			return
		}
	}
	content := []byte(body.Content)
	if body.Encoding == "base64" {
		var err error
		if content, err = base64.StdEncoding.DecodeString(body.Content); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "content is not valid base64"})
			return
		}
	}
	path := r.PathValue("path")
	if msg := checkPath(path); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	action := "create"
	if r.Method == http.MethodPut {
		action = "update"
		if body.LastCommitID != "" && tip != "" {
			last, err := g.lastCommit(tip, path)
			if err != nil {
				gitFailed(w, err)
				return
			}
			if last != "" && last != body.LastCommitID {
				writeError(w, http.StatusBadRequest, "You are attempting to update a file that has changed since you started editing it.")
				return
			}
		}
	}
	acts := []fileAction{{Action: action, Path: path, Content: content, HasContent: true}}
	id, err := g.commitFiles(tip, tip, body.Branch, acts, body.CommitMessage, userIdent(u), userIdent(u), s.now())
	if msg, ok := err.(indexError); ok {
		writeError(w, http.StatusBadRequest, string(msg))
		return
	}
	if err != nil {
		gitFailed(w, err)
		return
	}
	s.record(p, u, body.Branch, id, body.CommitMessage, acts)
	status := http.StatusOK
	if action == "create" {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{"file_path": path, "branch": body.Branch})
}

// record keeps a commit made through the API for Commits.
func (s *Server) record(p *Project, u *User, branch, id, message string, acts []fileAction) {
	c := Commit{ID: id, ProjectID: p.ID, Branch: branch, Message: message, AuthorID: u.ID}
	for _, a := range acts {
		f := CommitFile{Action: a.Action, Path: a.Path, PreviousPath: a.PreviousPath}
		if a.Action != "delete" {
			f.Content = append([]byte(nil), a.Content...)
		}
		c.Actions = append(c.Actions, f)
	}
	if len(c.Actions) > 0 {
		c.Path, c.Action, c.Content = c.Actions[0].Path, c.Actions[0].Action, c.Actions[0].Content
	}
	s.commits = append(s.commits, c)
}

// commitBody is what POST /repository/commits takes.
type commitBody struct {
	Branch        *string             `json:"branch"`
	CommitMessage *string             `json:"commit_message"`
	StartBranch   string              `json:"start_branch"`
	StartSHA      string              `json:"start_sha"`
	StartProject  any                 `json:"start_project"`
	AuthorName    string              `json:"author_name"`
	AuthorEmail   string              `json:"author_email"`
	Force         flexBool            `json:"force"`
	Actions       []commitActionInput `json:"actions"`
}

type commitActionInput struct {
	Action          string    `json:"action"`
	FilePath        *string   `json:"file_path"`
	PreviousPath    *string   `json:"previous_path"`
	Content         *string   `json:"content"`
	Encoding        string    `json:"encoding"`
	LastCommitID    string    `json:"last_commit_id"`
	ExecuteFilemode *flexBool `json:"execute_filemode"`
}

// flexBool reads a JSON boolean, or a form's "true"/"false" as a string.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case bool:
		*b = flexBool(v)
	case string:
		*b = flexBool(v == "true" || v == "1")
	case nil:
		*b = false
	default:
		return fmt.Errorf("not a boolean: %s", data)
	}
	return nil
}

// decodeCommitBody reads JSON, or a form with GitLab's (Grape's) array of
// hashes: actions[][action]=create&actions[][file_path]=a&actions[][action]=...,
// where a key seen again starts the next action.
func decodeCommitBody(r *http.Request, v *commitBody) error {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return json.NewDecoder(r.Body).Decode(v)
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return err
	}
	if r.URL.RawQuery != "" {
		raw = append([]byte(r.URL.RawQuery+"&"), raw...)
	}
	top := map[string]any{}
	var actions []map[string]any
	for _, kv := range strings.Split(string(raw), "&") {
		if kv == "" {
			continue
		}
		k, val, _ := strings.Cut(kv, "=")
		k, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(val)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("invalid form")
		}
		if field, ok := strings.CutPrefix(k, "actions[]["); ok {
			field = strings.TrimSuffix(field, "]")
			if len(actions) == 0 || actions[len(actions)-1][field] != nil {
				actions = append(actions, map[string]any{})
			}
			actions[len(actions)-1][field] = val
			continue
		}
		top[k] = val
	}
	if actions != nil {
		top["actions"] = actions
	}
	b, _ := json.Marshal(top)
	return json.Unmarshal(b, v)
}

func (s *Server) createCommit(w http.ResponseWriter, r *http.Request, u *User, p *Project) {
	var body commitBody
	if err := decodeCommitBody(r, &body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid body: " + err.Error()})
		return
	}
	bad := func(msg string) { writeJSON(w, http.StatusBadRequest, map[string]any{"error": msg}) }
	switch {
	case body.Branch == nil:
		bad("branch is missing")
		return
	case *body.Branch == "":
		bad("branch is empty")
		return
	case body.CommitMessage == nil:
		bad("commit_message is missing")
		return
	case len(body.Actions) == 0:
		bad("actions is missing")
		return
	case body.StartBranch != "" && body.StartSHA != "":
		bad("start_branch, start_sha are mutually exclusive")
		return
	}
	var acts []fileAction
	for i, a := range body.Actions {
		field := func(f string) string { return fmt.Sprintf("actions[%d][%s]", i, f) }
		switch {
		case a.Action == "":
			bad(field("action") + " is missing")
			return
		case a.Action != "create" && a.Action != "update" && a.Action != "delete" && a.Action != "move" && a.Action != "chmod":
			bad(field("action") + " does not have a valid value")
			return
		case a.FilePath == nil:
			bad(field("file_path") + " is missing")
			return
		case a.Action == "move" && a.PreviousPath == nil:
			bad(field("previous_path") + " is missing")
			return
		case a.Action == "update" && a.Content == nil:
			bad(field("content") + " is missing")
			return
		case a.Action == "chmod" && a.ExecuteFilemode == nil:
			bad(field("execute_filemode") + " is missing")
			return
		case a.Encoding != "" && a.Encoding != "text" && a.Encoding != "base64":
			bad(field("encoding") + " does not have a valid value")
			return
		}
		fa := fileAction{Action: a.Action, Path: *a.FilePath, HasContent: a.Content != nil && (a.Action == "create" || a.Action == "update" || a.Action == "move")}
		if a.Action == "update" || a.Action == "move" || a.Action == "delete" || a.Action == "chmod" {
			fa.LastCommitID = a.LastCommitID
		}
		if a.PreviousPath != nil {
			fa.PreviousPath = *a.PreviousPath
		}
		if a.ExecuteFilemode != nil {
			fa.Executable = bool(*a.ExecuteFilemode)
		}
		if fa.HasContent {
			fa.Content = []byte(*a.Content)
			if a.Encoding == "base64" {
				b, err := base64.StdEncoding.DecodeString(*a.Content)
				if err != nil {
					writeError(w, http.StatusBadRequest, "Invalid base64 content in "+field("content"))
					return
				}
				fa.Content = b
			}
		}
		acts = append(acts, fa)
	}
	if sp := body.StartProject; sp != nil && fmt.Sprint(sp) != itoa(p.ID) && fmt.Sprint(sp) != p.PathWithNS {
		writeError(w, http.StatusForbidden, "Project is not included in the fork network for "+fmt.Sprint(sp))
		return
	}
	branch := *body.Branch
	if !canPush(p, u, branch) {
		writeError(w, http.StatusForbidden, "You are not allowed to push into this branch")
		return
	}
	g := s.repoFor(w, p)
	if g == nil {
		return
	}
	id, msg, err := s.multiCommit(g, u, branch, body, acts)
	if err != nil {
		gitFailed(w, err)
		return
	}
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	s.record(p, u, branch, id, *body.CommitMessage, acts)
	c, err := g.commitInfo(id)
	if err != nil {
		gitFailed(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.commitJSON(p, g, c, true))
}

// multiCommit is Files::MultiService and Commits::CreateService: it checks
// the start point and the branch as GitLab does, then commits. A refusal
// is msg (a 400); err is git failing.
func (s *Server) multiCommit(g *gitRepo, u *User, branch string, body commitBody, acts []fileAction) (id, msg string, err error) {
	startBranch := body.StartBranch
	if startBranch == "" && body.StartSHA == "" {
		startBranch = branch
	}
	empty, err := g.empty()
	if err != nil {
		return "", "", err
	}
	var parent string
	switch {
	case body.StartSHA != "":
		if !shaRE.MatchString(body.StartSHA) || len(body.StartSHA) != 40 {
			return "", fmt.Sprintf("Invalid start_sha '%s'", body.StartSHA), nil
		}
		sha, ok, err := g.resolve(body.StartSHA)
		if err != nil {
			return "", "", err
		}
		if !ok {
			return "", fmt.Sprintf("Cannot find start_sha '%s'", body.StartSHA), nil
		}
		parent = sha
	default:
		tip, ok, err := g.branchTip(startBranch)
		if err != nil {
			return "", "", err
		}
		if !ok && !empty {
			return "", "You can only create or edit files when you are on a branch", nil
		}
		parent = tip
	}
	different := startBranch != branch
	oldTip, exists, err := g.branchTip(branch)
	if err != nil {
		return "", "", err
	}
	if !empty && different && exists && !bool(body.Force) {
		return "", fmt.Sprintf("A branch called '%s' already exists. Switch to that branch in order to make changes", branch), nil
	}
	if !validBranchName(branch) {
		return "", fmt.Sprintf("Something went wrong when we tried to create '%s' for you: Branch name is invalid", branch), nil
	}
	author := userIdent(u)
	if body.AuthorName != "" {
		author.Name = body.AuthorName
	}
	if body.AuthorEmail != "" {
		author.Email = body.AuthorEmail
	}
	id, err = g.commitFiles(parent, oldTip, branch, acts, *body.CommitMessage, author, userIdent(u), s.now())
	if m, ok := err.(indexError); ok {
		return "", string(m), nil
	}
	return id, "", err
}

// commitJSON is GitLab's commit entity; detail adds the CommitDetail fields.
func (s *Server) commitJSON(p *Project, g *gitRepo, c gitCommit, detail bool) map[string]any {
	title, _, _ := strings.Cut(c.Message, "\n")
	m := map[string]any{
		"id": c.ID, "short_id": c.ID[:8], "created_at": c.CommittedAt, "parent_ids": c.Parents,
		"title": title, "message": c.Message,
		"author_name": c.AuthorName, "author_email": c.AuthorEmail, "authored_date": c.AuthoredAt,
		"committer_name": c.CommitterName, "committer_email": c.CommitterEmail, "committed_date": c.CommittedAt,
		"trailers": map[string]any{}, "extended_trailers": map[string]any{},
		"web_url": s.URL + "/" + p.PathWithNS + "/-/commit/" + c.ID,
	}
	if detail {
		add, del := g.stats(c)
		m["stats"] = map[string]any{"additions": add, "deletions": del, "total": add + del}
		m["status"] = nil
		m["project_id"] = p.ID
		m["last_pipeline"] = nil
	}
	return m
}

func (s *Server) listCommits(w http.ResponseWriter, r *http.Request, _ *User, p *Project) {
	g := s.repoFor(w, p)
	if g == nil {
		return
	}
	q := r.URL.Query()
	page, perPage := pageParams(r)
	args := []string{fmt.Sprintf("--max-count=%d", perPage), fmt.Sprintf("--skip=%d", (page-1)*perPage)}
	if q.Get("all") == "true" {
		args = append(args, "--all")
	} else {
		ref := q.Get("ref_name")
		if ref == "" {
			ref = p.DefaultBranch
		}
		commit, ok, err := g.resolve(ref)
		if err != nil {
			gitFailed(w, err)
			return
		}
		if !ok {
			paginateUncounted(w, r, page, perPage, 0)
			writeJSON(w, http.StatusOK, []any{})
			return
		}
		args = append(args, commit)
	}
	if path := q.Get("path"); path != "" {
		args = append(args, "--", path)
	}
	list, err := g.log(args...)
	if err != nil {
		gitFailed(w, err)
		return
	}
	paginateUncounted(w, r, page, perPage, len(list))
	out := []any{}
	for _, c := range list {
		out = append(out, s.commitJSON(p, g, c, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getCommit(w http.ResponseWriter, r *http.Request, _ *User, p *Project) {
	g := s.repoFor(w, p)
	if g == nil {
		return
	}
	id, ok, err := g.resolve(r.PathValue("sha"))
	if err != nil {
		gitFailed(w, err)
		return
	}
	if !ok {
		errNotFound(w, "Commit")
		return
	}
	c, err := g.commitInfo(id)
	if err != nil {
		gitFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.commitJSON(p, g, c, r.URL.Query().Get("stats") != "false"))
}

// pageParams reads page and per_page as GitLab does (per_page 20 by
// default, at most 100).
func pageParams(r *http.Request) (page, perPage int) {
	perPage, _ = strconv.Atoi(r.URL.Query().Get("per_page"))
	if perPage <= 0 {
		perPage = 20
	}
	perPage = min(perPage, 100)
	page, _ = strconv.Atoi(r.URL.Query().Get("page"))
	return max(page, 1), perPage
}

// paginateUncounted sets the pagination headers of a list GitLab does not
// count (commits): no X-Total, and a next page whenever this one is full,
// even when nothing follows.
func paginateUncounted(w http.ResponseWriter, r *http.Request, page, perPage, got int) {
	h := w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(perPage))
	h.Set("X-Prev-Page", "")
	h.Set("X-Next-Page", "")
	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	links := []string{link(1, "first")}
	if page > 1 {
		h.Set("X-Prev-Page", strconv.Itoa(page-1))
		links = append(links, link(page-1, "prev"))
	}
	if got >= perPage {
		h.Set("X-Next-Page", strconv.Itoa(page+1))
		links = append(links, link(page+1, "next"))
	}
	h.Set("Link", strings.Join(links, ", "))
}

func (s *Server) listTree(w http.ResponseWriter, r *http.Request, _ *User, p *Project) {
	g := s.repoFor(w, p)
	if g == nil {
		return
	}
	q := r.URL.Query()
	ref := q.Get("ref")
	if ref == "" {
		ref = p.DefaultBranch
	}
	commit, ok, err := g.resolve(ref)
	if err != nil {
		gitFailed(w, err)
		return
	}
	if !ok {
		errNotFound(w, "Tree")
		return
	}
	all, err := g.lsTree(commit)
	if err != nil {
		gitFailed(w, err)
		return
	}
	dir := strings.Trim(q.Get("path"), "/")
	recursive := q.Get("recursive") == "true"
	var list []treeEntry
	isDir := dir == ""
	for _, e := range all {
		if e.Path == dir && e.Type == "tree" {
			isDir = true
		}
		rel, ok := strings.CutPrefix(e.Path, dir+"/")
		if dir == "" {
			rel, ok = e.Path, true
		}
		if ok && (recursive || !strings.Contains(rel, "/")) {
			list = append(list, e)
		}
	}
	// Since 17.7 a path that is no directory answers 404 (it was 200 []).
	if !isDir || (dir == "" && len(all) == 0) {
		errNotFound(w, "Tree")
		return
	}
	start, end := paginate(w, r, len(list))
	out := []any{}
	for _, e := range list[start:end] {
		out = append(out, map[string]any{"id": e.ID, "name": e.Path[strings.LastIndex(e.Path, "/")+1:], "type": e.Type, "path": e.Path, "mode": e.Mode})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) branchJSON(p *Project, g *gitRepo, u *User, name, commit string) (map[string]any, error) {
	c, err := g.commitInfo(commit)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"name": name, "merged": false, "protected": p.ProtectedBranches[name], "default": name == p.DefaultBranch,
		"developers_can_push": false, "developers_can_merge": false, "can_push": canPush(p, u, name),
		"web_url": s.URL + "/" + p.PathWithNS + "/-/tree/" + name, "commit": s.commitJSON(p, g, c, false),
	}, nil
}

func (s *Server) getBranch(w http.ResponseWriter, r *http.Request, u *User, p *Project) {
	g := s.repoFor(w, p)
	if g == nil {
		return
	}
	name := r.PathValue("branch")
	tip, ok, err := g.branchTip(name)
	if err != nil {
		gitFailed(w, err)
		return
	}
	if !ok {
		errNotFound(w, "Branch")
		return
	}
	j, err := s.branchJSON(p, g, u, name, tip)
	if err != nil {
		gitFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) createBranch(w http.ResponseWriter, r *http.Request, u *User, p *Project) {
	var body struct {
		Branch string `json:"branch"`
		Ref    string `json:"ref"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid body"})
		return
	}
	switch {
	case body.Branch == "":
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "branch is missing"})
		return
	case body.Ref == "":
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "ref is missing"})
		return
	}
	if !canPush(p, u, body.Branch) {
		writeError(w, http.StatusForbidden, "403 Forbidden")
		return
	}
	if !validBranchName(body.Branch) {
		writeError(w, http.StatusBadRequest, "Branch name is invalid")
		return
	}
	g := s.repoFor(w, p)
	if g == nil {
		return
	}
	if _, exists, err := g.branchTip(body.Branch); err != nil {
		gitFailed(w, err)
		return
	} else if exists {
		writeError(w, http.StatusBadRequest, "Branch already exists")
		return
	}
	commit, ok, err := g.resolve(body.Ref)
	if err != nil {
		gitFailed(w, err)
		return
	}
	if !ok {
		writeError(w, http.StatusBadRequest, "Invalid reference name: "+body.Ref)
		return
	}
	created, err := g.createBranch(body.Branch, commit)
	if err != nil {
		gitFailed(w, err)
		return
	}
	if !created {
		writeError(w, http.StatusBadRequest, "Branch already exists")
		return
	}
	j, err := s.branchJSON(p, g, u, body.Branch, commit)
	if err != nil {
		gitFailed(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, j)
}

// archiveFormats are the formats git archive makes of those GitLab offers.
var archiveFormats = map[string]string{"tar.gz": "tar.gz", "tgz": "tgz", "tar": "tar", "zip": "zip"}

// getArchive is GET /repository/archive[.format]: the tree at sha (the
// default branch's tip by default), or its subdirectory path.
func (s *Server) getArchive(w http.ResponseWriter, r *http.Request, _ *User, p *Project) {
	name := r.PathValue("archive")
	format := "tar.gz"
	if name != "archive" {
		f, ok := strings.CutPrefix(name, "archive.")
		if !ok || archiveFormats[f] == "" {
			writeError(w, http.StatusNotFound, "404 Not Found")
			return
		}
		format = f
	}
	g := s.repoFor(w, p)
	if g == nil {
		return
	}
	ref := r.URL.Query().Get("sha")
	if ref == "" {
		ref = p.DefaultBranch
	}
	commit, ok, err := g.resolve(ref)
	if err != nil {
		gitFailed(w, err)
		return
	}
	if !ok {
		errNotFound(w, "Commit")
		return
	}
	project := p.PathWithNS[strings.LastIndex(p.PathWithNS, "/")+1:]
	prefix := project + "-" + commit
	args := []string{"archive", "--format=" + archiveFormats[format]}
	path := strings.Trim(r.URL.Query().Get("path"), "/")
	if path != "" {
		if msg := checkPath(path); msg != "" {
			writeError(w, http.StatusBadRequest, msg)
			return
		}
		prefix += "-" + strings.ReplaceAll(path, "/", "-")
	}
	args = append(args, "--prefix="+prefix+"/", commit)
	if path != "" {
		args = append(args, "--", path)
	}
	out, err := g.run(nil, nil, args...)
	if err != nil {
		errNotFound(w, "File")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", prefix+"."+format))
	w.Header().Set("Content-Transfer-Encoding", "binary")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}
