//go:build linux || freebsd || netbsd || openbsd || dragonfly

package tunnel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// sessionBus says whether a D-Bus session bus is there to ask for the
// Secret Service, without starting one: with no address godbus would run
// dbus-launch, which starts a session bus that outlives the call (one more
// daemon for every kubectl request on a machine without a desktop).
func sessionBus() error {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return nil
	}
	if _, err := os.Stat(filepath.Join("/run/user", fmt.Sprint(os.Getuid()), "bus")); err == nil {
		return nil
	}
	return errors.New("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set), so no Secret Service")
}
