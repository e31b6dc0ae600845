//go:build reliability

package killed

import "syscall"

// memberProcAttr makes the kernel kill a member when the test process
// dies, so that no member outlives a crashed or killed test.
func memberProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
