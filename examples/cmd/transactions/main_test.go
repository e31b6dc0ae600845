package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/txstore"
)

// TestMain lets the test binary act as the transactions binary: with
// SWITCHYARD_TRANSACTIONS_MAIN=1 it runs main with the arguments after
// "--".
func TestMain(m *testing.M) {
	if os.Getenv("SWITCHYARD_TRANSACTIONS_MAIN") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"transactions"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func command(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "SWITCHYARD_TRANSACTIONS_MAIN=1", "PUBSUB_URL=", "DATABASE_URL=", "STORAGE_URL=", "ADDR=", "PUBSUB_NAMESPACE=")
	return cmd
}

// TestPortInUse: a port already in use fails at once, before the database
// is seeded (binding comes first).
func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	db := filepath.Join(t.TempDir(), "tx.db")
	start := time.Now()
	out, err := command(t, "-addr", ln.Addr().String(), "-db", "sqlite:"+db, "-seed", "1000000",
		"-storage", "file://"+t.TempDir()).CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "%s", out)
	assert.Equal(t, 1, ee.ExitCode())
	assert.Contains(t, string(out), "address already in use")
	assert.Less(t, time.Since(start), 5*time.Second, "no seeding first (a million rows take ~17s)")
	_, err = os.Stat(db)
	assert.ErrorIs(t, err, os.ErrNotExist, "the database was not even opened")
}

// TestSeedLogsAndShutdown: on a table that has rows, -seed says it seeds
// nothing and how to replace them; -reseed replaces them; the default
// address is loopback; the broker being unreachable does not stop the
// start; SIGTERM shuts down with a log line.
func TestSeedLogsAndShutdown(t *testing.T) {
	dir := t.TempDir()
	dbURL := "sqlite:" + filepath.Join(dir, "tx.db")
	s, err := txstore.Open(context.Background(), dbURL)
	require.NoError(t, err)
	_, err = s.Seed(context.Background(), 100, nil)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	run := func(args ...string) string {
		t.Helper()
		cmd := command(t, append([]string{"-db", dbURL, "-storage", "file://" + dir + "/files",
			"-pubsub-url", "amqp://guest:guest@127.0.0.1:1/"}, args...)...)
		stderr, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		var log strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "transactions API listening") {
				break
			}
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		rest, _ := io.ReadAll(stderr)
		log.Write(rest)
		require.NoError(t, cmd.Wait(), "%s", log.String())
		return log.String()
	}
	out := run("-seed", "50", "-addr", "127.0.0.1:0")
	assert.Regexp(t, `msg="the table already holds transactions; not seeded \(-reseed replaces them\)" rows=100 seed=50`, out)
	assert.Contains(t, out, `msg="broker unreachable; retrying in the background" service=transactions`)
	assert.Contains(t, out, `msg="shutting down" service=transactions`)
	assert.Contains(t, out, `msg=stopped service=transactions`)

	out = run("-seed", "50", "-reseed", "-addr", "127.0.0.1:0")
	assert.Regexp(t, `msg="seeded sample transactions" rows=50 `, out)
	s, err = txstore.Open(context.Background(), dbURL)
	require.NoError(t, err)
	n, err := s.CountTransactions(context.Background())
	require.NoError(t, err)
	require.NoError(t, s.Close())
	assert.Equal(t, int64(50), n)

	for _, port := range []string{"8095", "9095"} {
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Logf("port %s busy (%v): default addresses not checked", port, err)
			return
		}
		ln.Close()
	}
	out = run("-seed", "50")
	assert.Contains(t, out, `msg="transactions API listening" service=transactions addr=127.0.0.1:8095`, "loopback by default")
	assert.Contains(t, out, `msg="transactions gRPC API listening" service=transactions addr=127.0.0.1:9095`, "gRPC on loopback by default too")
}
