package nats

// TLS and credentials against a nats-server of the test's own (issue 15,
// case 5): the test makes a CA and a server certificate (internal/testcert),
// writes a config file into a temp dir, and starts /usr/sbin/nats-server
// with JetStream, TLS and user/password authorization on a free port of
// 127.0.0.1; the server is killed and its store removed when the test ends.
// It takes about two seconds and runs in every `go test`:
//
//	go test -race -run 'TestTLS' -v ./transport/nats/
//
// Locally it skips when nats-server is not installed; under CI=true it
// fails.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/brokertest"
	"github.com/switchyard-go/switchyard/internal/testcert"
	"github.com/switchyard-go/switchyard/internal/testlog"
	"github.com/switchyard-go/switchyard/pubsub"
)

// The credentials of the test server's one user.
const (
	tlsUser     = "switchyard"
	tlsPassword = "s3cr3t-PASS"
)

// natsServerBinary is the nats-server the TLS test starts.
const natsServerBinary = "/usr/sbin/nats-server"

// listenRE finds the client port in nats-server's log.
var listenRE = regexp.MustCompile(`Listening for client connections on 127\.0\.0\.1:(\d+)`)

// startTLSServer starts a nats-server with JetStream, TLS (certFile,
// keyFile) and the user tlsUser, and returns its host:port once it is ready.
// The server is killed when t ends.
func startTLSServer(t *testing.T, dir, certFile, keyFile string) string {
	t.Helper()
	if _, err := os.Stat(natsServerBinary); err != nil {
		msg := natsServerBinary + " is not installed (apt-get install nats-server); the TLS test starts its own server"
		if brokertest.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	conf := filepath.Join(dir, "server.conf")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, `
host: 127.0.0.1
port: -1
http_port: 0
tls {
  cert_file: %q
  key_file: %q
  timeout: 5
}
authorization {
  user: %q
  password: %q
}
`, certFile, keyFile, tlsUser, tlsPassword), 0o600))
	cmd := exec.Command(natsServerBinary, "-c", conf, "-js", "-sd", filepath.Join(dir, "store"))
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	// Read the log until the server is ready; keep draining it after.
	addr := make(chan string, 1)
	var logText strings.Builder
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		port := ""
		for sc.Scan() {
			line := sc.Text()
			if logText.Len() < 1<<16 {
				logText.WriteString(line + "\n")
			}
			if m := listenRE.FindStringSubmatch(line); m != nil {
				port = m[1]
			}
			if strings.Contains(line, "Server is ready") && port != "" {
				addr <- "127.0.0.1:" + port
				_, _ = io.Copy(io.Discard, stderr)
				return
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case a := <-addr:
		return a
	case <-logDone:
		<-exited
		t.Fatalf("nats-server stopped before it was ready:\n%s", logText.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("nats-server not ready within 30s")
	}
	panic("unreachable")
}

// tlsTestServer is the server of the TLS tests and the files clients need.
type tlsTestServer struct {
	addr    string
	caFile  string // the CA that signed the server's certificate
	wrongCA string // a CA that did not
}

func newTLSTestServer(t *testing.T) tlsTestServer {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "switchyard-test-ca")
	require.NoError(t, err)
	wrong, err := testcert.NewCA(dir, "other-ca")
	require.NoError(t, err)
	srv, err := ca.IssueServer(dir)
	require.NoError(t, err)
	return tlsTestServer{addr: startTLSServer(t, dir, srv.CertFile, srv.KeyFile), caFile: ca.File, wrongCA: wrong.File}
}

// openTimed opens raw with a fresh logger, and returns how long Open took.
func openTimed(t *testing.T, raw string, logs *testlog.Buffer) (*pubsub.Client, time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	b, err := OpenURL(ctx, mustURL(t, raw), pubsub.WithLogger(logTo(logs)))
	if b != nil {
		t.Cleanup(func() { _ = b.Close() })
	}
	return b, time.Since(start), err
}

func TestTLS(t *testing.T) {
	srv := newTLSTestServer(t)
	creds := tlsUser + ":" + tlsPassword + "@"

	t.Run("right CA: a message round-trips", func(t *testing.T) {
		for _, scheme := range []string{"tls", "nats"} { // nats:// with tls_ca requires TLS too
			t.Run(scheme, func(t *testing.T) {
				var logs testlog.Buffer
				raw := scheme + "://" + creds + srv.addr + "?connect_timeout=5s&tls_ca=" + srv.caFile
				b, took, err := openTimed(t, raw, &logs)
				require.NoError(t, err)
				t.Logf("connected over TLS in %v", took)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				require.NoError(t, b.Ping(ctx))
				got := make(chan *pubsub.Message, 10)
				sub, err := b.Subscribe(ctx, "tls.topic", "g", func(_ context.Context, m *pubsub.Message) error {
					got <- m
					return nil
				})
				require.NoError(t, err)
				const n = 10
				for i := range n {
					m := pubsub.NewMessage(fmt.Appendf(nil, "over tls %d", i))
					m.Metadata["k"] = "v"
					require.NoError(t, b.Publish(ctx, "tls.topic", m))
				}
				seen := map[string]bool{}
				for range n {
					m := recv(t, got, 30*time.Second)
					seen[string(m.Payload)] = true
					assert.Equal(t, "v", m.Metadata["k"])
				}
				assert.Len(t, seen, n, "each message received once")
				require.NoError(t, sub.Close())
				assert.Empty(t, got, "no duplicates")
				require.NoError(t, b.Close())
				assert.NotContains(t, logs.String(), tlsPassword)
			})
		}
	})

	t.Run("wrong CA is refused", func(t *testing.T) {
		for _, raw := range []string{
			"tls://" + creds + srv.addr + "?connect_timeout=5s&tls_ca=" + srv.wrongCA,
			"nats://" + creds + srv.addr + "?connect_timeout=5s&tls_ca=" + srv.wrongCA,
			// No CA given: the system roots do not know the test CA either.
			"tls://" + creds + srv.addr + "?connect_timeout=5s",
		} {
			var logs testlog.Buffer
			_, took, err := openTimed(t, raw, &logs)
			require.Error(t, err, raw)
			t.Logf("refused in %v: %v", took, err)
			assert.Less(t, took, 15*time.Second, "Open returns within its connect timeout, not a hang")
			assert.Regexp(t, `certificate signed by unknown authority|failed to verify certificate`, err.Error())
			assert.Contains(t, err.Error(), srv.addr, "the error names the server")
			assert.NotContains(t, err.Error(), tlsPassword)
			assert.NotContains(t, logs.String(), tlsPassword)
		}
	})

	t.Run("credentials", func(t *testing.T) {
		const wrong = "wr0ng-s3cr3t-PASS"
		for name, c := range map[string]struct {
			userinfo, secret string
			ok               bool
		}{
			"right password": {tlsUser + ":" + tlsPassword, tlsPassword, true},
			"wrong password": {tlsUser + ":" + wrong, wrong, false},
			"wrong user":     {"nobody:" + tlsPassword, tlsPassword, false},
			"token":          {wrong, wrong, false},
			"no credentials": {"", "", false},
		} {
			t.Run(name, func(t *testing.T) {
				at := ""
				if c.userinfo != "" {
					at = "@"
				}
				var logs testlog.Buffer
				raw := "tls://" + c.userinfo + at + srv.addr + "?connect_timeout=5s&tls_ca=" + srv.caFile
				b, took, err := openTimed(t, raw, &logs)
				if c.ok {
					require.NoError(t, err)
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					require.NoError(t, b.Ping(ctx))
					return
				}
				require.Error(t, err)
				t.Logf("refused in %v: %v", took, err)
				assert.Less(t, took, 15*time.Second)
				assert.Contains(t, strings.ToLower(err.Error()), "authorization violation")
				if c.secret != "" {
					assert.NotContains(t, err.Error(), c.secret)
					assert.NotContains(t, logs.String(), c.secret)
				}
			})
		}
	})
}
