package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill cmd when the loadtest dies, so that no
// server outlives an interrupted run.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
