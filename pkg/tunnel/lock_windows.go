//go:build windows

package tunnel

import (
	"context"
	"os"
	"time"
)

// lockFile takes a lock by creating path exclusively (there is no flock on
// Windows); a lock older than lockWait is taken as abandoned.
func lockFile(ctx context.Context, path string) (func(), error) {
	if fi, err := os.Stat(path); err == nil && time.Since(fi.ModTime()) > lockWait {
		_ = os.Remove(path)
	}
	return createLock(ctx, path, lockWait)
}
