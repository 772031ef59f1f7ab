package ui

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrNeedsYes is returned when a confirmation is needed but nobody can give
// it: stdin is not a terminal.
var ErrNeedsYes = errors.New("refusing to go on without confirmation: stdin is not a terminal, pass --yes")

// Confirm asks question on out and reads y/yes from in. It never prompts
// when in is not a terminal: it returns ErrNeedsYes then.
func Confirm(in io.Reader, out io.Writer, question string) (bool, error) {
	if !IsTerminal(in) {
		return false, ErrNeedsYes
	}
	fmt.Fprintf(out, "%s [y/N]: ", question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		return false, nil
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
