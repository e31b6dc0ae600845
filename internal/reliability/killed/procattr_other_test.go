//go:build reliability && !linux

package killed

import "syscall"

// memberProcAttr: outside Linux, members are killed by t.Cleanup and exit
// at their stdin's EOF.
func memberProcAttr() *syscall.SysProcAttr { return nil }
