package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// TestFleetPipelineJobUpgradesAnAgent: the child pipeline fleet pipeline
// prints, its job's script run as a runner runs it (only CI_* variables,
// the matrix entry's variables and GitLab's injected KUBECONFIG), upgrades
// the agent on the test cluster through KAS and keeps its JSON result.
func TestFleetPipelineJobUpgradesAnAgent(t *testing.T) {
	e := newCIEnv(t)
	r := e.run(t, nil, "fleet", "pipeline", "--group", "infra", "--agent", "infra/agents:prod-eu", "--",
		"upgrade", "{agent}", "-f", "agent/values.yaml", "--set", "replicas=3")
	if r.code != 0 {
		t.Fatalf("fleet pipeline: %+v", r)
	}
	for _, s := range e.gitSecrets() {
		if s != "" && strings.Contains(r.stdout, s) {
			t.Fatal("the pipeline holds a token")
		}
	}
	var child map[string]struct {
		Script   []string `json:"script"`
		Parallel struct {
			Matrix []map[string]string `json:"matrix"`
		} `json:"parallel"`
		ResourceGroup string `json:"resource_group"`
	}
	if err := yaml.Unmarshal([]byte(r.stdout), &child); err != nil {
		t.Fatalf("the child pipeline is not YAML: %v\n%s", err, r.stdout)
	}
	job, ok := child["fleet-1"]
	if !ok || len(job.Parallel.Matrix) != 1 || job.ResourceGroup == "" {
		t.Fatalf("the child pipeline: %s", r.stdout)
	}
	entry := job.Parallel.Matrix[0]
	if entry["AGENT_CONTEXT"] != "infra/agents:prod-eu" {
		t.Fatalf("matrix entry %v", entry)
	}
	vars := e.vars("parent_pipeline", "main")
	for k, v := range entry {
		vars[k] = v
	}
	res := e.runJob(t, pipeline{Jobs: map[string]ciJob{"fleet-1": {Script: job.Script}}}, "fleet-1", vars)
	if res.code != 0 {
		t.Fatalf("the fleet job failed (exit %d):\n%s", res.code, res.log)
	}
	d, err := clientset(t).AppsV1().Deployments("gitlab-agent-prod-eu").Get(context.Background(), "prod-eu-gitlab-agent-v2", metav1.GetOptions{})
	if err != nil || d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Fatalf("the job did not upgrade the agent: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(e.dir, "result.json"))
	if err != nil || !json.Valid(b) {
		t.Fatalf("result.json: %v\n%s", err, b)
	}
}
