package cluster

import "syscall"

// sysProcAttr kills the components when the test process dies, so that a
// crashed or killed test run leaves no apiserver behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
