package gitlab

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// File is a repository file's content at a ref.
type File struct {
	Path    string
	Ref     string
	Content []byte
	// LastCommitID lets an update fail instead of overwriting a change
	// made in between.
	LastCommitID string
}

// GetFile reads path at ref; found is false when the file does not exist.
func (c *Client) GetFile(ctx context.Context, p ProjectRef, path, ref string) (f *File, found bool, err error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	gf, resp, err := c.api.RepositoryFiles.GetFile(p.pid(), path, &gl.GetFileOptions{Ref: gl.Ptr(ref)}, opt)
	if err != nil {
		err = c.classify(fmt.Sprintf("reading %s at %s in %s", path, ref, p), resp, err, hints{
			forbidden: fmt.Sprintf("you need at least the Reporter role on %s to read its files", p),
		})
		if IsClass(err, ClassNotFound) {
			return nil, false, nil
		}
		return nil, false, err
	}
	content, err := base64.StdEncoding.DecodeString(gf.Content)
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: GitLab sent content that is not base64: %w", path, err)
	}
	return &File{Path: path, Ref: ref, Content: content, LastCommitID: gf.LastCommitID}, true, nil
}

// CommitFile creates path on branch, or updates it when prev (from GetFile)
// is given, with message as the commit message.
func (c *Client) CommitFile(ctx context.Context, p ProjectRef, branch, path string, content []byte, message string, prev *File) error {
	enc := base64.StdEncoding.EncodeToString(content)
	h := hints{
		forbidden: fmt.Sprintf("you need a role on %s that may push to %s (Maintainer for a protected branch); or pick another branch with --branch", p, branch),
		conflict:  "the file changed since it was read; run the command again",
		invalid:   fmt.Sprintf("check that branch %s exists in %s", branch, p),
	}
	op := fmt.Sprintf("committing %s to %s in %s", path, branch, p)
	var err error
	if prev == nil {
		_, cancel, opt := c.call(ctx, once)
		_, resp, cerr := c.api.RepositoryFiles.CreateFile(p.pid(), path, &gl.CreateFileOptions{
			Branch: gl.Ptr(branch), Encoding: gl.Ptr("base64"), Content: gl.Ptr(enc), CommitMessage: gl.Ptr(message),
		}, opt)
		cancel()
		err = c.classify(op, resp, cerr, h)
	} else {
		_, cancel, opt := c.call(ctx, once)
		uo := &gl.UpdateFileOptions{
			Branch: gl.Ptr(branch), Encoding: gl.Ptr("base64"), Content: gl.Ptr(enc), CommitMessage: gl.Ptr(message),
		}
		if prev.LastCommitID != "" {
			uo.LastCommitID = gl.Ptr(prev.LastCommitID)
		}
		_, resp, cerr := c.api.RepositoryFiles.UpdateFile(p.pid(), path, uo, opt)
		cancel()
		err = c.classify(op, resp, cerr, h)
	}
	if err == nil || !mayHaveHappened(err) {
		return err
	}
	// The answer was lost (a 5xx, a dropped connection, a timeout): the
	// commit may be in. It is, when the branch holds what was sent.
	rctx, cancel := cleanupContext(ctx)
	defer cancel()
	now, found, rerr := c.GetFile(rctx, p, path, branch)
	if rerr == nil && found && bytes.Equal(now.Content, content) {
		return nil
	}
	return fmt.Errorf("%w (the commit may or may not have been made: look at %s on %s)", err, path, branch)
}
