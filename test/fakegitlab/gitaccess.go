package fakegitlab

import (
	"bytes"
	"fmt"
	"time"
)

// What tests read of the projects' repositories.

// GitCommit is a commit of a project's repository with the whole tree it
// holds.
type GitCommit struct {
	ID             string
	Parents        []string
	AuthorName     string
	AuthorEmail    string
	CommitterName  string
	CommitterEmail string
	Time           time.Time // the committer's
	Message        string
	// Files maps every file path of the commit's tree to its content.
	Files map[string][]byte
}

// RepoDir is the bare repository of the project (made now if it was not
// yet), e.g. for git -C DIR log; "" when there is no such project.
func (s *Server) RepoDir(projectID int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projects[projectID]
	if p == nil {
		return ""
	}
	g, err := s.repo(p)
	if err != nil {
		return ""
	}
	return g.dir
}

// GitLog lists the commits of branch, newest first, each with its files.
// A missing branch has none.
func (s *Server) GitLog(projectID int64, branch string) ([]GitCommit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projects[projectID]
	if p == nil {
		return nil, fmt.Errorf("no project %d", projectID)
	}
	g, err := s.repo(p)
	if err != nil {
		return nil, err
	}
	tip, ok, err := g.branchTip(branch)
	if err != nil || !ok {
		return nil, err
	}
	list, err := g.log(tip)
	if err != nil {
		return nil, err
	}
	out := make([]GitCommit, 0, len(list))
	for _, c := range list {
		files, err := g.files(c.ID)
		if err != nil {
			return nil, err
		}
		var ids []string
		for _, e := range files {
			if e.Type == "blob" {
				ids = append(ids, e.ID)
			}
		}
		blobs, err := g.catBlobs(ids)
		if err != nil {
			return nil, err
		}
		gc := GitCommit{ID: c.ID, Parents: c.Parents, AuthorName: c.AuthorName, AuthorEmail: c.AuthorEmail,
			CommitterName: c.CommitterName, CommitterEmail: c.CommitterEmail, Time: c.CommittedAt, Message: c.Message,
			Files: map[string][]byte{}}
		for path, e := range files {
			gc.Files[path] = blobs[e.ID]
		}
		out = append(out, gc)
	}
	return out, nil
}

// AllHistoryContains reports whether any object of the project's
// repository holds text: a file's content at any revision, a commit
// message, an author, a path; reachable from a branch or not (what a failed
// commit left behind counts too).
func (s *Server) AllHistoryContains(projectID int64, text string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projects[projectID]
	if p == nil {
		return false
	}
	g, err := s.repo(p)
	if err != nil {
		return false
	}
	out, err := g.run(nil, nil, "cat-file", "--batch-all-objects", "--batch", "--unordered")
	if err != nil {
		panic(fmt.Sprintf("fakegitlab: reading the objects of %s: %v", p.PathWithNS, err))
	}
	if bytes.Contains(out, []byte(text)) {
		return true
	}
	refs, _ := g.run(nil, nil, "for-each-ref", "--format=%(refname)")
	return bytes.Contains(refs, []byte(text))
}
