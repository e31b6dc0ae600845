//go:build reliability

package killed

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/internal/testlog"
)

// event is one record read from a member's pipe, or its end (kind 0).
type event struct {
	m       *member
	kind    byte // 'R', 'S', 'D'; 0 at the pipe's end
	id      string
	attempt int
	at      time.Time // when the member wrote it (when the parent read it, for R and the end)
	read    time.Time // when the parent read it
	torn    string    // at the end: an unterminated tail, dropped
	err     error     // a malformed record
}

// member is one member process, seen from the parent.
type member struct {
	n        int
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	stderr   *testlog.Buffer
	killed   bool
	killedAt time.Time
	ended    bool          // its pipe reached EOF
	exited   chan struct{} // closed when Wait returned
	waitErr  error
}

func (m *member) String() string { return "member " + strconv.Itoa(m.n) }

// startMember re-executes the test binary as a member with env added, and
// sends its records to events. The member is killed when t ends if it is
// still running.
func startMember(t *testing.T, n int, env []string, events chan<- event) *member {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("executable: %v", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("pipe: %v", err)
	}
	m := &member{n: n, stderr: &testlog.Buffer{}, exited: make(chan struct{})}
	m.cmd = exec.Command(exe, "-test.run=^$")
	m.cmd.Env = append(append(os.Environ(), memberEnv+"=1"), env...)
	m.cmd.ExtraFiles = []*os.File{w}
	m.cmd.Stdout = m.stderr
	m.cmd.Stderr = m.stderr
	m.cmd.SysProcAttr = memberProcAttr()
	m.stdin, err = m.cmd.StdinPipe()
	if err != nil {
		t.Fatalf("stdin pipe: %v", err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start member: %v", err)
	}
	_ = w.Close() // the member holds the write end now: its death ends the pipe
	t.Cleanup(func() {
		select {
		case <-m.exited:
		default:
			_ = m.cmd.Process.Kill()
			<-m.exited
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", m, m.stderr.String())
		}
	})
	go func() {
		m.waitErr = m.cmd.Wait()
		close(m.exited)
	}()
	go readRecords(m, r, events)
	return m
}

// readRecords sends each complete record of r to events, then an end event
// with any unterminated tail (which it never counts).
func readRecords(m *member, r *os.File, events chan<- event) {
	defer r.Close()
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			now := time.Now()
			events <- event{m: m, at: now, read: now, torn: line}
			return
		}
		ev, perr := parseRecord(strings.TrimSuffix(line, "\n"))
		ev.m, ev.read, ev.err = m, time.Now(), perr
		if ev.at.IsZero() {
			ev.at = ev.read
		}
		events <- ev
	}
}

// parseRecord parses one record line (without its newline).
func parseRecord(line string) (event, error) {
	f := strings.Fields(line)
	switch {
	case len(f) == 1 && f[0] == "R":
		return event{kind: 'R'}, nil
	case len(f) == 4 && (f[0] == "S" || f[0] == "D"):
		a, err := strconv.Atoi(f[2])
		if err != nil {
			return event{}, fmt.Errorf("record %q: %w", line, err)
		}
		ns, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			return event{}, fmt.Errorf("record %q: %w", line, err)
		}
		return event{kind: f[0][0], id: f[1], attempt: a, at: time.Unix(0, ns)}, nil
	}
	return event{}, fmt.Errorf("malformed record %q", line)
}

// kill SIGKILLs the member.
func (m *member) kill() error {
	m.killed, m.killedAt = true, time.Now().Round(0) // wall clock, as the members' records
	return m.cmd.Process.Signal(syscall.SIGKILL)
}

// send writes one command line to the member's stdin.
func (m *member) send(line string) error {
	_, err := io.WriteString(m.stdin, line+"\n")
	return err
}

// stop asks the member to shut down gracefully and waits for it to exit.
func (m *member) stop(timeout time.Duration) error {
	if err := m.send("Q"); err != nil {
		return fmt.Errorf("%s: send Q: %w", m, err)
	}
	select {
	case <-m.exited:
	case <-time.After(timeout):
		return fmt.Errorf("%s did not exit within %v of Q", m, timeout)
	}
	if m.waitErr != nil {
		return fmt.Errorf("%s exited: %w", m, m.waitErr)
	}
	return nil
}

// reaped reports whether a killed member died of SIGKILL.
func (m *member) reaped() error {
	<-m.exited
	var ee *exec.ExitError
	if !errors.As(m.waitErr, &ee) {
		return fmt.Errorf("%s: not killed: %v", m, m.waitErr)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return fmt.Errorf("%s: exit %v, want death by SIGKILL", m, m.waitErr)
	}
	return nil
}
