package input

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestReadAllCapsAndCancels(t *testing.T) {
	b, err := ReadAll(context.Background(), strings.NewReader("abc"), 3, "x")
	if err != nil || string(b) != "abc" {
		t.Fatalf("%q %v", b, err)
	}
	_, err = ReadAll(context.Background(), strings.NewReader("abcd"), 3, "stdin")
	var tl *TooLargeError
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), "stdin is larger than") {
		t.Fatalf("%v", err)
	}
	if f, err := os.Open("/dev/zero"); err == nil {
		defer f.Close()
		if _, err := ReadAll(context.Background(), f, 1<<20, "/dev/zero"); !errors.As(err, &tl) {
			t.Fatalf("/dev/zero: %v", err)
		}
	}
	r, w := io.Pipe() // a stdin nobody writes to
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = ReadAll(ctx, r, 10, "the token from stdin")
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "reading the token from stdin") {
		t.Fatalf("%v", err)
	}
}
