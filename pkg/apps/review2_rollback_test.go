package apps

import (
	"context"
	"strings"
	"testing"
	"time"
)

// An app whose path is the repository root: a rollback would rewrite the
// whole repository, the CI configuration, the agent's configuration and
// every other app's path with it. It is refused, and nothing is committed.
func TestRollbackRefusesTheRepositoryRootAndOtherAppsPaths(t *testing.T) {
	ctx := context.Background()
	gl, p, cl := gitlabWorld(t)
	gl.SetFile(p, "main", "app.yaml", []byte("v: 1\n"))
	first := tip(t, gl, p)
	gl.SetFile(p, "main", ".gitlab/agents/prod/config.yaml", []byte("gitops: {}\n"))
	gl.SetFile(p, "main", "apps/api/cm.yaml", []byte("v: 2\n"))
	gl.SetFile(p, "main", "app.yaml", []byte("v: 2\n"))
	second := tip(t, gl, p)

	c := cluster()
	c.Put(gitRepo("apps", "fleet", gl.URL+"/infra/fleet.git", "main", "main@sha1:"+second),
		kustomization("apps", "root", "fleet", "./", "main@sha1:"+second, "True", nil),
		kustomization("apps", "all", "fleet", "./apps", "main@sha1:"+second, "True", nil),
		kustomization("apps", "api", "fleet", "./apps/api", "main@sha1:"+second, "True", nil))
	controller(t, c, func() string { return "main@sha1:" + tip(t, gl, p) }, "")
	e := Env{Flux: c, GitLabURL: gl.URL, Poll: time.Millisecond}
	for _, name := range []string{"root", "all"} {
		_, err := Rollback(ctx, e, cl, "apps", name, RollbackOptions{To: first})
		if err == nil {
			t.Errorf("rollback of %s: no error", name)
		}
		if tip(t, gl, p) != second {
			t.Fatalf("rollback of %s committed: %v", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "roll back") {
			t.Errorf("rollback of %s: %v", name, err)
		}
	}
}
