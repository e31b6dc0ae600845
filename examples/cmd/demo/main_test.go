package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain lets the test binary act as the demo binary: with
// SWITCHYARD_DEMO_MAIN=1 it runs main with the arguments after "--".
func TestMain(m *testing.M) {
	if os.Getenv("SWITCHYARD_DEMO_MAIN") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"demo"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runMain runs the binary's main with args in a child process and returns
// its output and exit code.
func runMain(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "SWITCHYARD_DEMO_MAIN=1", "PUBSUB_URL=")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("run demo: %v", err)
	}
	return string(out), 0
}

// TestScenarioExitCodes: `demo -scenario` exits 0 and says ok when every
// expected event arrived, and 1 naming what was missing when time is too
// short.
func TestScenarioExitCodes(t *testing.T) {
	out, code := runMain(t, "-scenario", "-seed", "500")
	if code != 0 || !strings.Contains(out, "Scenario passed: 7 of 7") {
		t.Fatalf("demo -scenario exited %d:\n%s", code, out)
	}
	out, code = runMain(t, "-scenario", "-seed", "100", "-timeout", "300ms")
	if code != 1 || !strings.Contains(out, "expected events missing") {
		t.Fatalf("demo -scenario -timeout 300ms exited %d, want 1:\n%s", code, out)
	}
}
