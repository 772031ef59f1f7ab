package diff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/secretfile"
)

// ExternalDiffEnv names the program kubectl diff runs instead of diff -u -N,
// with its arguments; it gets the live and the merged directory.
const ExternalDiffEnv = "KUBECTL_EXTERNAL_DIFF"

// RunExternal writes the objects that differ as YAML files, named as
// kubectl names them (group.version.Kind.namespace.name), into a LIVE and a
// MERGED directory (0700, removed afterwards), runs command with them as its
// last two arguments, and returns its exit code: kubectl's convention is 0
// same, 1 different, more an error. command is split as a shell splits
// words (quotes, backslashes), but no shell runs it. Secret values are
// masked in the files as in every output.
func RunExternal(ctx context.Context, command string, r *Result, stdout, stderr io.Writer) (int, error) {
	argv, err := splitWords(command)
	if err != nil {
		return 2, fmt.Errorf("%s: %w", ExternalDiffEnv, err)
	}
	if len(argv) == 0 {
		return 2, fmt.Errorf("%s is empty", ExternalDiffEnv)
	}
	tmp, err := os.MkdirTemp("", "kubectl-gitlab-agent-diff-")
	if err != nil {
		return 2, err
	}
	defer os.RemoveAll(tmp)
	live, merged := filepath.Join(tmp, "LIVE"), filepath.Join(tmp, "MERGED")
	for _, d := range []string{live, merged} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return 2, err
		}
	}
	for _, o := range r.Objects {
		if o.Action == Unchanged || o.Action == Failed {
			continue
		}
		name := fileName(o)
		if o.Before != "" {
			if err := secretfile.Write(filepath.Join(live, name), []byte(o.Before)); err != nil {
				return 2, err
			}
		}
		if o.After != "" {
			if err := secretfile.Write(filepath.Join(merged, name), []byte(o.After)); err != nil {
				return 2, err
			}
		}
	}
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], live, merged)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode(), nil
	}
	return 2, fmt.Errorf("running %s (%s): %w", ExternalDiffEnv, argv[0], err)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// fileName is kubectl's name for an object's file, with anything that could
// leave the directory replaced.
func fileName(o Object) string {
	group, version := "", o.APIVersion
	if i := strings.LastIndex(o.APIVersion, "/"); i >= 0 {
		group, version = o.APIVersion[:i]+".", o.APIVersion[i+1:]
	}
	name := group + version + "." + o.Kind + "." + o.Namespace + "." + o.Name
	name = unsafeName.ReplaceAllString(name, "_")
	if name == "." || name == ".." {
		name = "_"
	}
	return name
}

// splitWords splits s into words as a POSIX shell would, for quotes and
// backslashes only: no variables, globs or other expansion.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quote := false, rune(0)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case quote == '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(rs) && strings.ContainsRune(`"\$`+"`", rs[i+1]):
				i++
				cur.WriteRune(rs[i])
			default:
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '\\':
			if i+1 < len(rs) {
				i++
				cur.WriteRune(rs[i])
			}
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
