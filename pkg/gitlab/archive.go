package gitlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// ArchiveFormat is the format Archive asks for: what Flux's build reads
// (pkg/fluxbuild.Extract).
const ArchiveFormat = "tar.gz"

// DefaultMaxArchiveBytes bounds an archive when Archive is given no bound:
// a GitOps repository's YAML, compressed, is a few MiB.
const DefaultMaxArchiveBytes = 64 << 20

// Archive fetches the repository's tree at sha (a commit, branch or tag;
// the default branch when empty) as a tar.gz archive, only the directory
// path when given, reading at most max bytes of it (0:
// DefaultMaxArchiveBytes). GitLab's top directory (<project>-<ref>-<sha>)
// is in the archive, and path keeps its place under it.
//
// GitLab.com allows 5 calls a minute to this endpoint: a 429 is retried
// after its Retry-After, as for every call. The answer is read whole,
// within one try's time (Options.RequestTimeout).
func (c *Client) Archive(ctx context.Context, p ProjectRef, sha, path string, max int64) (io.ReadCloser, error) {
	if max <= 0 {
		max = DefaultMaxArchiveBytes
	}
	opt := &gl.ArchiveOptions{Format: gl.Ptr(ArchiveFormat)}
	if sha != "" {
		opt.SHA = gl.Ptr(sha)
	}
	path = strings.Trim(strings.TrimPrefix(path, "./"), "/")
	if path != "" && path != "." {
		opt.Path = gl.Ptr(path)
	}
	at := sha
	if at == "" {
		at = "the default branch"
	}
	op := fmt.Sprintf("downloading %s at %s", p, at)
	if opt.Path != nil {
		op = fmt.Sprintf("downloading %s of %s at %s", path, p, at)
	}
	_, cancel, ro := c.callBounded(ctx, repeatable, max)
	defer cancel()
	var buf bytes.Buffer
	resp, err := c.api.Repositories.StreamArchive(p.pid(), &buf, opt, ro)
	if err != nil {
		var tooLarge *ResponseTooLargeError
		if errors.As(err, &tooLarge) {
			return nil, &Error{Class: ClassBadAnswer, Op: op, Err: err,
				Detail: fmt.Sprintf("the archive is larger than %s", sizeText(max)),
				Hint:   "the repository is too large to build here; keep the manifests in a smaller repository"}
		}
		return nil, c.classify(op, resp, err, hints{
			forbidden: fmt.Sprintf("you need at least the Reporter role on %s to download its files", p),
			notFound:  fmt.Sprintf("check that %s exists in %s (the commit, and the path in it)", at, p),
		})
	}
	return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
}

func sizeText(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", max(n>>10, 1))
}
