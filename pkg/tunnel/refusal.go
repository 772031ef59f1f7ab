package tunnel

import (
	"fmt"
	"strings"
)

// ciAccessRefusal is how KAS's 403 says that a CI job's project is not in
// the agent's ci_access.
const ciAccessRefusal = "agentId is not allowed"

// IsCIAccessRefusal says whether an error's text is KAS refusing a CI job
// for an agent that is not shared with its project.
func IsCIAccessRefusal(msg string) bool { return strings.Contains(msg, ciAccessRefusal) }

// CIAccessHint says what to do about KAS refusing a CI job for the agent:
// share the agent with the job's project (project: CI_PROJECT_PATH, ""
// when not known).
func CIAccessHint(project string) string {
	who := "the job's project"
	example := "GROUP/PROJECT"
	if project != "" {
		who, example = "the job's project ("+project+")", project
	}
	return fmt.Sprintf("KAS refuses this CI job for the agent: %s is not in the agent's ci_access; add it with 'kubectl gitlab-agent agent config set AGENT --project AGENT_PROJECT --ci-access-project %s' (a token that can push to the agent's project)", who, example)
}
