package agentname

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	for _, ok := range []string{"a", "prod-eu", "42", strings.Repeat("a", 63)} {
		if err := Validate(ok); err != nil {
			t.Errorf("Validate(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Prod_EU", "-x", "x-", "a_b", "a.b", strings.Repeat("a", 64), "a\nb"} {
		if err := Validate(bad); err == nil {
			t.Errorf("Validate(%q) succeeded", bad)
		}
	}
}
