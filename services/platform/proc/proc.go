// Package proc starts and watches the platform's processes for benchmarks
// and soak runs: start, stop gracefully, wait, free ports, memory.
package proc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Start runs path with args; its standard error goes to ours, except the
// NATS server's start-up banner.
func Start(path string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(path, args...)
	if filepath.Base(path) != "natsd" {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	return cmd, nil
}

// Stop interrupts cmd and waits for it, killing it after 20 s. It returns
// an error unless the process exited with status 0: a service must stop
// cleanly on a signal, and a panic or a failed shutdown must not go
// unnoticed.
func Stop(cmd *exec.Cmd) error {
	if cmd.ProcessState != nil {
		return exitError(cmd)
	}
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not stop within 20 s of an interrupt; killed", filepath.Base(cmd.Path))
	}
	return exitError(cmd)
}

func exitError(cmd *exec.Cmd) error {
	if cmd.ProcessState.Success() {
		return nil
	}
	return fmt.Errorf("%s stopped with %s", filepath.Base(cmd.Path), cmd.ProcessState)
}

// WaitFor polls cond until it holds or d has passed.
func WaitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// LastLine is the last non-empty line of b.
func LastLine(b []byte) []byte {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return []byte(lines[len(lines)-1])
}

// Memory reads a figure of /proc/<pid>/status in MiB: "VmRSS" (now) or
// "VmHWM" (peak). pid 0 is this process. It returns 0 when unknown.
func Memory(pid int, field string) float64 {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
