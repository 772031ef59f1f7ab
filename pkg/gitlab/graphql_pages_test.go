package gitlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestGraphQLPagesThatDoNotEnd: a GraphQL list walks cursors only forward
// and a bounded number of pages, whatever pageInfo says: an endCursor that
// repeats (or cycles) ends the walk, and hasNextPage forever with fresh
// cursors is refused after maxGraphQLPages, never an endless loop.
func TestGraphQLPagesThatDoNotEnd(t *testing.T) {
	for _, c := range []struct {
		name   string
		cursor func(n int64) string
		fails  bool
	}{
		{"the same cursor again", func(int64) string { return "c" }, false},
		{"a cycle of cursors", func(n int64) string { return fmt.Sprint("c", n%3) }, false},
		{"a new cursor forever", func(n int64) string { return fmt.Sprint("c", n) }, true},
	} {
		for _, call := range []string{"GroupAgents", "AuthorizedAgents"} {
			t.Run(c.name+"/"+call, func(t *testing.T) {
				var calls atomic.Int64
				cl := hostile(t, func(w http.ResponseWriter, r *http.Request) {
					n := calls.Add(1)
					var q struct {
						Query string `json:"query"`
					}
					_ = json.NewDecoder(r.Body).Decode(&q)
					pi := fmt.Sprintf(`"pageInfo":{"endCursor":%q,"hasNextPage":true}`, c.cursor(n))
					w.Header().Set("Content-Type", "application/json")
					switch {
					case strings.Contains(q.Query, "group("):
						fmt.Fprintf(w, `{"data":{"group":{"projects":{%s,"nodes":[{"fullPath":"g/p"}]}}}}`, pi)
					case strings.Contains(q.Query, "clusterAgents"):
						fmt.Fprintf(w, `{"data":{"project":{"clusterAgents":{%s,"nodes":[{"id":"gid://gitlab/Clusters::Agent/%d","name":"a%d"}]}}}}`, pi, n, n)
					case strings.Contains(q.Query, "ciAccess"):
						fmt.Fprintf(w, `{"data":{"project":{"ciAccessAuthorizedAgents":{%s,"nodes":[{"agent":{"id":"gid://gitlab/Clusters::Agent/%d","name":"a%d"}}]}}}}`, pi, n, n)
					default:
						fmt.Fprintf(w, `{"data":{"project":{"userAccessAuthorizedAgents":{%s,"nodes":[]}}}}`, pi)
					}
				})
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				var err error
				switch call {
				case "GroupAgents":
					_, err = cl.GroupAgents(ctx, "g", true, nil)
				default:
					_, err = cl.AuthorizedAgents(ctx, ProjectRef{Path: "g/p"})
				}
				if ctx.Err() != nil {
					t.Fatalf("still walking pages after %d requests", calls.Load())
				}
				if c.fails != (err != nil) {
					t.Fatalf("err %v after %d requests", err, calls.Load())
				}
				if err != nil && !strings.Contains(err.Error(), "pages") {
					t.Errorf("error does not say why: %v", err)
				}
				if calls.Load() > 3*maxGraphQLPages {
					t.Errorf("%d requests", calls.Load())
				}
			})
		}
	}
}
