package gitremote

import "os"

// ownedBySelfOrRoot: Windows reports no owner here; every file counts.
func ownedBySelfOrRoot(os.FileInfo) bool { return true }

// openNoWait opens path for reading (Windows has no FIFOs in the tree).
func openNoWait(path string) (*os.File, error) { return os.Open(path) }
