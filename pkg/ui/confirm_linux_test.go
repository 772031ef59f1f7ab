package ui

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: its controlling side and the terminal.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("opening the terminal: %v", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// TestConfirmPrintsTheQuestionInert: a question carries text from the
// cluster or GitLab (uninstall's names the directory, project and branch
// of the record on the agent's token Secret): a terminal escape in it must
// not reach the terminal, where it could hide or rewrite what is asked.
func TestConfirmPrintsTheQuestionInert(t *testing.T) {
	master, tty := openPTY(t)
	if _, err := master.Write([]byte("n\n")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ok, err := Confirm(context.Background(), tty, &out, "Remove clusters/x\x1b[2K\rRemove nothing?")
	if err != nil || ok {
		t.Fatalf("Confirm = %v, %v", ok, err)
	}
	if strings.ContainsAny(out.String(), "\x1b\r") {
		t.Fatalf("the question reached the terminal raw: %q", out.String())
	}
}
