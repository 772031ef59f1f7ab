// Package capture holds what tests need to read output while something
// else (a process, a server's goroutines) is still writing it.
package capture

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer safe to write and read at the same time.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
