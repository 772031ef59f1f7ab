// Command krewmanifest writes the krew-index manifest for a release from the
// krew-release-bot template and goreleaser's checksums, as the bot would:
//
//	go run ./test/release/cmd/krewmanifest -tag v0.1.0 -checksums dist/checksums.txt > plugins/gitlab-agent.yaml
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/release"
)

func main() {
	tag := flag.String("tag", "", "the release tag, e.g. v0.1.0")
	sums := flag.String("checksums", "dist/checksums.txt", "goreleaser's checksums file")
	tmpl := flag.String("template", "krew.yaml", "the krew-release-bot template")
	flag.Parse()
	if err := run(*tag, *sums, *tmpl); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(tag, sumsPath, tmplPath string) error {
	if tag == "" {
		return fmt.Errorf("-tag is required")
	}
	data, err := os.ReadFile(sumsPath)
	if err != nil {
		return err
	}
	sums, err := release.ParseChecksums(data)
	if err != nil {
		return err
	}
	tmpl, err := os.ReadFile(tmplPath)
	if err != nil {
		return err
	}
	out, err := release.RenderKrewTemplate(tmpl, tag, sums)
	if err != nil {
		return err
	}
	header := "# The krew-index manifest for " + tag + ", made from krew.yaml and that release's\n" +
		"# checksums.txt by test/release/cmd/krewmanifest (make krew-manifest).\n"
	_, err = os.Stdout.Write(append([]byte(header), out...))
	return err
}
