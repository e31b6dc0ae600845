package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/gcppubsub"
)

// TestMain lets the test binary act as the emulator binary: with
// SWITCHYARD_EMULATOR_MAIN=1 it runs main with the arguments after "--".
func TestMain(m *testing.M) {
	if os.Getenv("SWITCHYARD_EMULATOR_MAIN") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"pubsub-emulator"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// emulatorHost reads the emulator's output up to the export line and
// returns the PUBSUB_EMULATOR_HOST it gives, and a function that waits for
// the output to end and returns all of it.
func emulatorHost(t *testing.T, out io.Reader) (host string, all func() string) {
	t.Helper()
	var seen strings.Builder
	lines := make(chan string)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "output ended before the export line:\n%s", seen.String())
			seen.WriteString(l + "\n")
			if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "export PUBSUB_EMULATOR_HOST="); ok {
				host, _, _ = strings.Cut(rest, " ")
				done := make(chan struct{})
				go func() {
					defer close(done)
					for l := range lines {
						seen.WriteString(l + "\n")
					}
				}()
				return host, func() string { <-done; return seen.String() }
			}
		case <-timeout:
			t.Fatalf("no export line within 10s:\n%s", seen.String())
		}
	}
}

// TestRunServesGcppubsub: a broker reaches the emulator through the printed
// PUBSUB_EMULATOR_HOST and delivers; cancelling the context stops it.
func TestRunServesGcppubsub(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-host", "127.0.0.1", "-port", "0"}, pw, io.Discard); pw.Close() }()
	host, _ := emulatorHost(t, pr)
	require.True(t, strings.HasPrefix(host, "127.0.0.1:"), host)

	t.Setenv("PUBSUB_EMULATOR_HOST", host)
	b, err := gcppubsub.New(ctx, gcppubsub.Config{ProjectID: "demo-project"})
	require.NoError(t, err)
	got := make(chan *pubsub.Message, 1)
	sub, err := b.Subscribe(ctx, "greetings", "printer", func(_ context.Context, m *pubsub.Message) error { got <- m; return nil })
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "greetings", &pubsub.Message{ID: "hello-1", Payload: []byte("hello")}))
	select {
	case m := <-got:
		assert.Equal(t, "hello-1", m.ID)
		assert.Equal(t, []byte("hello"), m.Payload)
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery through the emulator")
	}
	require.NoError(t, sub.Close())
	require.NoError(t, b.Close())

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

func TestRunErrors(t *testing.T) {
	ctx := context.Background()
	var stderr bytes.Buffer
	err := run(ctx, []string{"-colour", "blue"}, io.Discard, &stderr)
	assert.ErrorContains(t, err, "flag provided but not defined: -colour")
	assert.Contains(t, stderr.String(), "-port int")

	assert.ErrorIs(t, run(ctx, []string{"-h"}, io.Discard, io.Discard), flag.ErrHelp)
	assert.ErrorContains(t, run(ctx, []string{"extra"}, io.Discard, io.Discard), `unexpected arguments ["extra"]`)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	err = run(ctx, []string{"-host", "127.0.0.1", "-port", port}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "listen on 127.0.0.1:"+port)
}

// TestSignalsExitCleanly: the binary exits 0 on SIGINT and on SIGTERM.
func TestSignalsExitCleanly(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "-host", "127.0.0.1", "-port", "0")
			cmd.Env = append(os.Environ(), "SWITCHYARD_EMULATOR_MAIN=1")
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			host, all := emulatorHost(t, out)
			assert.NotEmpty(t, host)
			require.NoError(t, cmd.Process.Signal(sig))
			output := all() // read to the end before Wait closes the pipe
			require.NoError(t, cmd.Wait(), "exit status after %v:\n%s", sig, output)
			assert.Contains(t, output, "Stopping the emulator")
		})
	}
}
