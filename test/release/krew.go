// Package release checks and produces the release files: the archives that
// .goreleaser.yaml makes, the krew-release-bot template krew.yaml, and the
// krew-index manifest plugins/gitlab-agent.yaml.
package release

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// addURIAndShaRE matches the krew-release-bot's template call.
var addURIAndShaRE = regexp.MustCompile(`\{\{\s*addURIAndSha\s+"([^"]+)"\s+\.TagName\s*\}\}`)

// RenderKrewTemplate fills krew.yaml for tag the way krew-release-bot does:
// the tag, and for each archive its URI and the sha256 from checksums
// (archive file name → hex digest).
func RenderKrewTemplate(tmpl []byte, tag string, checksums map[string]string) ([]byte, error) {
	var missing []string
	out := addURIAndShaRE.ReplaceAllFunc(tmpl, func(m []byte) []byte {
		uri := strings.ReplaceAll(string(addURIAndShaRE.FindSubmatch(m)[1]), "{{ .TagName }}", tag)
		sum, ok := checksums[path.Base(uri)]
		if !ok {
			missing = append(missing, path.Base(uri))
		}
		return []byte(fmt.Sprintf("uri: %s\n    sha256: %s", uri, sum))
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("no checksum for %s", strings.Join(missing, ", "))
	}
	out = bytes.ReplaceAll(out, []byte("{{ .TagName }}"), []byte(tag))
	// The template's leading comment is about the template, not the result.
	var b bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(out))
	header := true
	for sc.Scan() {
		line := sc.Text()
		if header && strings.HasPrefix(line, "#") {
			continue
		}
		header = false
		b.WriteString(line + "\n")
	}
	return b.Bytes(), sc.Err()
}

// ParseChecksums reads goreleaser's checksums.txt ("<sha256>  <file>" lines).
func ParseChecksums(data []byte) (map[string]string, error) {
	sums := map[string]string{}
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || len(f[0]) != 64 {
			return nil, fmt.Errorf("checksums line %d: want \"<sha256>  <file>\", got %q", i+1, line)
		}
		sums[f[1]] = f[0]
	}
	return sums, nil
}
