//go:build windows

package tunnel

import (
	"fmt"
	"os"
	"time"
)

// lockFile takes a lock by creating path exclusively (no flock on Windows),
// waiting up to a minute; a lock older than that is taken as abandoned.
func lockFile(path string) (func(), error) {
	deadline := time.Now().Add(time.Minute)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if fi, serr := os.Stat(path); serr == nil && time.Since(fi.ModTime()) > time.Minute {
			os.Remove(path)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("locking the token cache: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
