package gitlab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// fleet is a group of 30 projects (10 direct, 10 in a subgroup, 10 in a
// subgroup of that) with 10 agents each; a Developer sees them all.
func fleet(t *testing.T) (*fakegitlab.Server, string) {
	t.Helper()
	fake := fakegitlab.New()
	t.Cleanup(fake.Close)
	u, tok := fake.AddUser("ops")
	for i := range 30 {
		path := fmt.Sprintf("fleet/p%02d", i)
		switch {
		case i >= 20:
			path = fmt.Sprintf("fleet/sub/deep/p%02d", i)
		case i >= 10:
			path = fmt.Sprintf("fleet/sub/p%02d", i)
		}
		p := fake.AddProject(path)
		fake.SetRole(p, u, fakegitlab.Developer)
		for j := range 10 {
			a := fake.AddAgent(p, fmt.Sprintf("a%d", j), u)
			t1 := fake.AddAgentToken(a, "t1", u)
			if j%3 == 0 {
				fake.AddAgentToken(a, "t2", u)
			}
			if j%2 == 0 {
				fake.SetAgentConnection(a, "v17.3.0")
			}
			if j == 1 {
				fake.MarkTokenUsed(t1.Token, time.Now().Add(-time.Minute))
			}
		}
	}
	fake.AddProject("other/p") // outside the group
	return fake, tok
}

func gqlClient(t *testing.T, fake *fakegitlab.Server, token string, rt http.RoundTripper) *Client {
	t.Helper()
	o := Options{URL: fake.URL, Credentials: Credentials{Token: token, Source: "GITLAB_TOKEN"}, RetryBase: time.Millisecond}
	if rt != nil {
		o.HTTPClient = &http.Client{Transport: rt}
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGroupAgents(t *testing.T) {
	fake, tok := fleet(t)
	c := gqlClient(t, fake, tok, nil)
	var last [2]int
	var mu sync.Mutex
	got, err := c.GroupAgents(context.Background(), "fleet", true, func(done, total int) {
		mu.Lock()
		last = [2]int{done, total}
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 300 {
		t.Fatalf("got %d agents, want 300", len(got))
	}
	if last != [2]int{30, 30} {
		t.Errorf("last progress %v, want 30 of 30", last)
	}
	seen := map[string]bool{}
	connected, two := 0, 0
	for _, a := range got {
		key := a.Project + ":" + a.Name
		if seen[key] {
			t.Fatalf("%s twice", key)
		}
		seen[key] = true
		if a.Connected {
			connected++
		}
		if a.ActiveTokens == 2 {
			two++
		}
		if a.ID == 0 || a.OldestToken == nil {
			t.Fatalf("agent %+v: no ID or token age", a)
		}
		if a.ConnectedNow != (a.Version == "v17.3.0") {
			t.Fatalf("agent %+v: version without a connection", a)
		}
	}
	// a0 a2 a4 a6 a8 connected by KAS, a1 by a token used a minute ago.
	if connected != 30*6 || two != 30*4 {
		t.Errorf("connected %d, two tokens %d; want 180, 120", connected, two)
	}
	if got[0].Project != "fleet/p00" || got[0].Name != "a0" {
		t.Errorf("first %s:%s, want fleet/p00:a0", got[0].Project, got[0].Name)
	}

	direct, err := c.GroupAgents(context.Background(), "fleet", false, nil)
	if err != nil || len(direct) != 100 {
		t.Fatalf("without subgroups: %d agents, %v; want 100", len(direct), err)
	}
	// 1 query for the projects, 1 per project: 4 at once.
	if n := fake.GraphQLQueries(); n != 31+11 {
		t.Errorf("%d queries, want 42", n)
	}
}

func TestGroupAgentsSplitsTooComplexPages(t *testing.T) {
	fake, tok := fleet(t)
	fake.Inject(fakegitlab.Fault{Route: fakegitlab.GraphQLRoute, Nth: 3, Count: 2, Status: 200, ContentType: "application/json",
		Body: []byte(`{"errors":[{"message":"Query has complexity of 306, which exceeds max complexity of 250"}]}`)})
	got, err := gqlClient(t, fake, tok, nil).GroupAgents(context.Background(), "fleet", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 300 {
		t.Fatalf("got %d agents, want 300", len(got))
	}
	// Two refused, and one project read in pages of 5 (or 2 of 5 and 2):
	// more queries than the 31 needed otherwise.
	if n := fake.Calls(fakegitlab.GraphQLRoute); n < 34 {
		t.Errorf("%d calls: the refused pages were not split", n)
	}
}

func TestGroupAgentsErrors(t *testing.T) {
	fake, tok := fleet(t)
	c := gqlClient(t, fake, tok, nil)
	if _, err := c.GroupAgents(context.Background(), "nope", true, nil); !IsClass(err, ClassNotFound) {
		t.Errorf("unknown group: %v, want ClassNotFound", err)
	}
	if _, err := gqlClient(t, fake, "glpat-wrong", nil).GroupAgents(context.Background(), "fleet", true, nil); !IsClass(err, ClassUnauthenticated) {
		t.Errorf("bad token: %v, want ClassUnauthenticated", err)
	}
	// 429 then the answer: retried by the same transport as every call.
	fake.Inject(fakegitlab.Fault{Route: fakegitlab.GraphQLRoute, Nth: 2, Status: 429, RetryAfter: "0"})
	if got, err := c.GroupAgents(context.Background(), "fleet", true, nil); err != nil || len(got) != 300 {
		t.Errorf("after a 429: %d agents, %v", len(got), err)
	}
	// A field error fails the call with GitLab's message.
	fake.Inject(fakegitlab.Fault{Route: fakegitlab.GraphQLRoute, Nth: 1, Status: 200, ContentType: "application/json",
		Body: []byte(`{"errors":[{"message":"Field 'connections' doesn't exist on type 'ClusterAgent'"}]}`)})
	if _, err := c.GroupAgents(context.Background(), "fleet", true, nil); !IsClass(err, ClassInvalid) || !strings.Contains(err.Error(), "connections") {
		t.Errorf("field error: %v", err)
	}
}

// recorder keeps every GraphQL request body.
type recorder struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(b))
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestGroupAgentsNamesOnlyInVariables attacks the queries with names that
// would change them if they were written into the query text.
func TestGroupAgentsNamesOnlyInVariables(t *testing.T) {
	fake := fakegitlab.New()
	t.Cleanup(fake.Close)
	u, tok := fake.AddUser("ops")
	group := `ev"il){ __schema { types { name } } } #`
	p := fake.AddProject(group + `/pro"j}{`)
	fake.SetRole(p, u, fakegitlab.Developer)
	name := `a"}) { id } project(fullPath:"x`
	fake.AddAgentToken(fake.AddAgent(p, name, u), "t", u)
	rec := &recorder{}
	got, err := gqlClient(t, fake, tok, rec).GroupAgents(context.Background(), group, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != name || got[0].Project != p.PathWithNS {
		t.Fatalf("got %+v", got)
	}
	if len(rec.bodies) == 0 {
		t.Fatal("no request recorded")
	}
	for _, b := range rec.bodies {
		var q struct {
			Query     string         `json:"query"`
			Variables map[string]any `json:"variables"`
		}
		if err := json.Unmarshal(b, &q); err != nil {
			t.Fatal(err)
		}
		if q.Query != projectsQuery && q.Query != agentsQuery && q.Query != agentsQueryEE {
			t.Errorf("query text is not one of the constants:\n%s", q.Query)
		}
		for _, bad := range []string{`ev"il`, `pro"j`, `a"}`, "__schema"} {
			if strings.Contains(q.Query, bad) {
				t.Errorf("query text holds %q", bad)
			}
		}
	}
}

// TestGroupAgentsReceptive: EE's isReceptive says which agents KAS dials;
// a GitLab without the field (CE) is asked again without it, and says
// nothing.
func TestGroupAgentsReceptive(t *testing.T) {
	for _, ee := range []bool{true, false} {
		fake := fakegitlab.New()
		u, tok := fake.AddUser("ops")
		p := fake.AddProject("infra/agents")
		fake.SetRole(p, u, fakegitlab.Developer)
		dial := fake.AddAgent(p, "dialed", u)
		fake.AddAgent(p, "dials", u)
		if ee {
			fake.AddURLConfiguration(dial, "grpcs://edge.example.com:8182")
		} else {
			fake.SetReceptive(false)
		}
		got, err := gqlClient(t, fake, tok, &recorder{}).GroupAgents(context.Background(), "infra", true, nil)
		fake.Close()
		if err != nil || len(got) != 2 {
			t.Fatalf("ee=%v: %v %+v", ee, err, got)
		}
		for _, a := range got {
			switch {
			case !ee && a.Receptive != nil:
				t.Errorf("CE: %s receptive %v, want unknown", a.Name, *a.Receptive)
			case ee && (a.Receptive == nil || *a.Receptive != (a.Name == "dialed")):
				t.Errorf("EE: %s receptive %v", a.Name, a.Receptive)
			}
		}
	}
}
