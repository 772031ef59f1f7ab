package ui

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
)

// ErrNeedsYes is returned when a confirmation is needed but nobody can give
// it: stdin is not a terminal.
var ErrNeedsYes = errors.New("refusing to go on without confirmation: stdin is not a terminal, pass --yes")

// Confirm asks question on out and reads y/yes from in. It never prompts
// when in is not a terminal: it returns ErrNeedsYes then. Ctrl-C at the
// prompt (ctx ending) answers no, with ctx's error.
func Confirm(ctx context.Context, in io.Reader, out io.Writer, question string) (bool, error) {
	if !IsTerminal(in) {
		return false, ErrNeedsYes
	}
	// The question names things from GitLab and the cluster: inert.
	fmt.Fprintf(out, "%s [y/N]: ", safetext.Line(question))
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(io.LimitReader(in, 1024)).ReadString('\n')
		answer <- line
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(out)
		return false, fmt.Errorf("waiting for an answer: %w", ctx.Err())
	case line := <-answer:
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "y", "yes":
			return true, nil
		}
		return false, nil
	}
}
