//go:build !linux

package testenv

import "os/exec"

func dieWithTest(*exec.Cmd) {}
