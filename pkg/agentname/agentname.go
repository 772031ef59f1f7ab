// Package agentname holds GitLab's rule for agent names, which are also the
// Helm release names the agent's objects are named after.
package agentname

import (
	"fmt"
	"regexp"
)

// MaxLength is the longest name GitLab accepts.
const MaxLength = 63

// pattern is GitLab's rule (and a DNS-1123 label).
var pattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Validate checks name against GitLab's rule, before any request is made.
func Validate(name string) error {
	if len(name) > MaxLength || !pattern.MatchString(name) {
		return fmt.Errorf("invalid agent name %q: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return nil
}
