// Command groupbench times status --group's GraphQL read (GroupAgents)
// beside the REST walk a user would script (the group's projects, then each
// project's agents, then each agent's tokens, one call at a time) against a
// fake GitLab that answers each request after -latency, in the same run.
//
//	go run ./test/bench/groupbench
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

func main() {
	latency := flag.Duration("latency", 30*time.Millisecond, "delay of every answer")
	projects := flag.Int("projects", 30, "projects under the group (a third in a subgroup, a third in a subgroup of that)")
	agents := flag.Int("agents", 10, "agents per project")
	flag.Parse()

	fake := fakegitlab.New()
	defer fake.Close()
	u, tok := fake.AddUser("ops")
	for i := range *projects {
		path := fmt.Sprintf("fleet/p%03d", i)
		switch i % 3 {
		case 1:
			path = fmt.Sprintf("fleet/sub/p%03d", i)
		case 2:
			path = fmt.Sprintf("fleet/sub/deep/p%03d", i)
		}
		p := fake.AddProject(path)
		fake.SetRole(p, u, fakegitlab.Developer)
		for j := range *agents {
			a := fake.AddAgent(p, fmt.Sprintf("agent-%d", j), u)
			fake.AddAgentToken(a, "t", u)
			if j%2 == 0 {
				fake.SetAgentConnection(a, "v17.3.0")
			}
		}
	}
	fake.SetLatency(*latency)

	c, err := gitlab.New(gitlab.Options{URL: fake.URL, Credentials: gitlab.Credentials{Token: tok}})
	if err != nil {
		fail(err)
	}
	start := time.Now()
	got, err := c.GroupAgents(context.Background(), "fleet", true, nil)
	if err != nil {
		fail(err)
	}
	gql := time.Since(start)
	gqlCalls := fake.Calls(fakegitlab.GraphQLRoute)

	start = time.Now()
	n, calls, err := restWalk(fake.URL, tok, "fleet")
	if err != nil {
		fail(err)
	}
	rest := time.Since(start)
	if n != len(got) {
		fail(fmt.Errorf("GraphQL found %d agents, REST %d", len(got), n))
	}
	fmt.Printf("%d agents in %d projects, %s per request\n", n, *projects, *latency)
	fmt.Printf("graphql (status --group): %6.2fs  %4d requests\n", gql.Seconds(), gqlCalls)
	fmt.Printf("rest walk (sequential):   %6.2fs  %4d requests\n", rest.Seconds(), calls)
	fmt.Printf("ratio graphql/rest: %.3f\n", gql.Seconds()/rest.Seconds())
}

// restWalk is the script: GET /groups/:id/projects?include_subgroups=true,
// then each project's cluster_agents, then each agent's tokens, in pages of
// 100, one request at a time. It returns the agents found and the requests.
func restWalk(base, token, group string) (int, int, error) {
	calls := 0
	get := func(path string, v any) error {
		next := base + "/api/v4/" + path
		for page := 1; ; page++ {
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s&per_page=100&page=%d", next, page), nil)
			req.Header.Set("PRIVATE-TOKEN", token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			calls++
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				return fmt.Errorf("GET %s: %d %v", path, resp.StatusCode, err)
			}
			var items []json.RawMessage
			if err := json.Unmarshal(b, &items); err != nil {
				return err
			}
			*v.(*[]json.RawMessage) = append(*v.(*[]json.RawMessage), items...)
			if resp.Header.Get("X-Next-Page") == "" {
				return nil
			}
		}
	}
	var projects []json.RawMessage
	if err := get("groups/"+url.PathEscape(group)+"/projects?include_subgroups=true", &projects); err != nil {
		return 0, calls, err
	}
	n := 0
	for _, raw := range projects {
		var p struct{ ID int64 }
		_ = json.Unmarshal(raw, &p)
		var agents []json.RawMessage
		if err := get(fmt.Sprintf("projects/%d/cluster_agents?", p.ID), &agents); err != nil {
			return n, calls, err
		}
		for _, ra := range agents {
			var a struct{ ID int64 }
			_ = json.Unmarshal(ra, &a)
			var tokens []json.RawMessage
			if err := get(fmt.Sprintf("projects/%d/cluster_agents/%d/tokens?", p.ID, a.ID), &tokens); err != nil {
				return n, calls, err
			}
			n++
		}
	}
	return n, calls, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "groupbench:", err)
	os.Exit(1)
}
