// Package rabbitnode starts RabbitMQ nodes of the machine's installation for
// tests that must stop, kill, cluster or reconfigure a broker, which the
// shared test broker (127.0.0.1:5672) must never be.
//
// Each node is a separate Erlang node with a name of its own
// (swy-<random>-<i>@localhost), a free AMQP port and a free distribution
// port on 127.0.0.1, no plugins, and its data, logs, pid file, generated
// rabbitmq.conf and Erlang cookie in a temporary directory. Start and
// Cluster register a t.Cleanup that stops the nodes and removes the
// directory, whether the test passed or not.
//
//	n := rabbitnode.Start(t, "consumer_timeout = 10000")
//	url := n.URL() // amqp://guest:guest@127.0.0.1:PORT/
//
//	nodes := rabbitnode.Cluster(t, 3) // node 2 and 3 joined to node 1
//
// It needs rabbitmq-server and rabbitmqctl (RabbitMQ 3.10 or later, as
// Debian's rabbitmq-server package installs them). The scripts are taken
// from $SWITCHYARD_RABBITMQ_BIN if set, else /usr/lib/rabbitmq/bin (where
// Debian keeps the real ones: its /usr/sbin wrappers switch to the rabbitmq
// user and drop the environment), else from $PATH. When they are missing the
// test is skipped with a how-to, or fails under CI=true. Starting a node
// takes about 5 seconds and 150 MB of memory.
package rabbitnode

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/internal/brokertest"
)

// StartTimeout bounds the start of one node, and its restart.
const StartTimeout = 90 * time.Second

// Node is one RabbitMQ node started by Start or Cluster. Its methods are
// safe for concurrent use.
type Node struct {
	// Name is the Erlang node name, for example swy-1a2b3c4d-1@localhost.
	Name string
	// Port is the AMQP port on 127.0.0.1.
	Port int
	// DistPort is the Erlang distribution port.
	DistPort int
	// Dir is the node's own directory (data, logs, configuration); it is
	// removed at cleanup.
	Dir string

	bin string
	env []string

	mu   sync.Mutex
	cmd  *exec.Cmd     // the running rabbitmq-server, nil when stopped
	exit chan struct{} // closed when cmd exited
	err  error         // cmd's exit status, once exit is closed
}

// URL returns the node's AMQP URL with the default guest user, which
// RabbitMQ admits from 127.0.0.1.
func (n *Node) URL() string {
	return "amqp://guest:guest@" + n.Addr() + "/"
}

// Addr returns the node's AMQP address, 127.0.0.1:PORT.
func (n *Node) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port))
}

// Options configure the nodes of StartWith and ClusterWith.
type Options struct {
	// Config lines go into rabbitmq.conf after the listener, for example
	// "consumer_timeout = 10000" or the ssl_options of a TLS listener.
	Config []string
	// Advanced is the content of advanced.config (Erlang terms), for
	// settings rabbitmq.conf lacks, for example
	// `[{rabbit, [{channel_tick_interval, 1000}]}].`; empty: none.
	Advanced string
}

// Start starts one node whose rabbitmq.conf holds config's lines (for
// example "consumer_timeout = 10000") after the listener, waits until it
// runs, and stops and removes it when t ends.
func Start(t testing.TB, config ...string) *Node {
	t.Helper()
	return ClusterWith(t, 1, Options{Config: config})[0]
}

// StartWith is Start with Options.
func StartWith(t testing.TB, o Options) *Node {
	t.Helper()
	return ClusterWith(t, 1, o)[0]
}

// Cluster starts n nodes with the same config lines (see Start), all at
// once, and joins nodes 2..n to node 1 (stop_app, reset, join_cluster,
// start_app). They share one Erlang cookie of their own. Node 1 is first in
// the result.
func Cluster(t testing.TB, n int, config ...string) []*Node {
	t.Helper()
	return ClusterWith(t, n, Options{Config: config})
}

// ClusterWith is Cluster with Options.
func ClusterWith(t testing.TB, n int, o Options) []*Node {
	t.Helper()
	bin := findBin(t)
	base, err := os.MkdirTemp("", "swy-rabbit-")
	if err != nil {
		t.Fatalf("rabbitnode: %v", err)
	}
	var nodes []*Node
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, nd := range nodes {
			wg.Go(func() {
				if t.Failed() {
					nd.logTail(t)
				}
				if err := nd.halt(); err != nil {
					t.Errorf("rabbitnode: stop %s: %v", nd.Name, err)
				}
			})
		}
		wg.Wait()
		_ = os.RemoveAll(base)
	})
	home := filepath.Join(base, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatalf("rabbitnode: %v", err)
	}
	// One cookie for the cluster's nodes and the CLI calls on them: they
	// must share it, and the machine's own node (another cookie) stays
	// out of reach.
	if err := os.WriteFile(filepath.Join(home, ".erlang.cookie"), []byte(randomHex(16)), 0o400); err != nil {
		t.Fatalf("rabbitnode: %v", err)
	}
	prefix := "swy-" + randomHex(4)
	for i := 1; i <= n; i++ {
		nd, err := newNode(bin, base, home, fmt.Sprintf("%s-%d@localhost", prefix, i), o)
		if err != nil {
			t.Fatalf("rabbitnode: %v", err)
		}
		nodes = append(nodes, nd)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, nd := range nodes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
			defer cancel()
			errs[i] = nd.Start(ctx)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("rabbitnode: %v", err)
	}
	for _, nd := range nodes[1:] {
		ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
		err := nd.Join(ctx, nodes[0])
		cancel()
		if err != nil {
			t.Fatalf("rabbitnode: %v", err)
		}
	}
	return nodes
}

// newNode prepares the directory and environment of a node.
func newNode(bin, base, home, name string, o Options) (*Node, error) {
	short, _, _ := strings.Cut(name, "@")
	dir := filepath.Join(base, short)
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	n := &Node{Name: name, Port: ports[0], DistPort: ports[1], Dir: dir, bin: bin}
	for _, d := range []string{"mnesia", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	conf := "listeners.tcp.default = " + n.Addr() + "\n" + strings.Join(o.Config, "\n") + "\n"
	files := map[string]string{
		"rabbitmq.conf":   conf,
		"enabled_plugins": "[].\n",
		// Replaces the machine's rabbitmq-env.conf (which names the
		// default node).
		"rabbitmq-env.conf": "ERL_EPMD_ADDRESS=127.0.0.1\n",
	}
	if o.Advanced != "" {
		files["advanced.config"] = o.Advanced + "\n"
	}
	for f, text := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	n.env = append(os.Environ(),
		"HOME="+home,
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_NODENAME="+name,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(n.Port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(n.DistPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "pid"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_PLUGINS_EXPAND_DIR="+filepath.Join(dir, "plugins-expand"),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
	)
	return n, nil
}

// Start starts the node's Erlang VM and RabbitMQ if it is not running
// (after Stop or Kill, with its data kept), and waits until RabbitMQ runs
// or ctx ends.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		return fmt.Errorf("%s is already running", n.Name)
	}
	_ = os.Remove(filepath.Join(n.Dir, "pid"))
	out, err := os.OpenFile(filepath.Join(n.Dir, "log", "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	cmd := exec.Command(filepath.Join(n.bin, "rabbitmq-server"))
	cmd.Env = n.env
	cmd.Dir = n.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Kill ends the whole group
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		_ = out.Close()
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	exit := make(chan struct{})
	n.cmd, n.exit = cmd, exit
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		_ = out.Close()
		n.mu.Lock()
		n.err = err
		if n.cmd == cmd {
			n.cmd = nil
		}
		n.mu.Unlock()
		close(exit)
	}()
	// wait waits for the pid file, then for the rabbit application.
	waited := make(chan error, 1)
	go func() {
		_, err := n.Ctl(ctx, "wait", filepath.Join(n.Dir, "pid"), "--timeout", strconv.Itoa(int(StartTimeout/time.Second)))
		waited <- err
	}()
	select {
	case err := <-waited:
		if err != nil {
			return fmt.Errorf("start %s: %w (log: %s)", n.Name, err, n.lastLines(5))
		}
		return nil
	case <-exit:
		return fmt.Errorf("start %s: rabbitmq-server exited: %v (log: %s)", n.Name, n.err, n.lastLines(5))
	}
}

// Stop stops RabbitMQ and its Erlang VM gracefully (rabbitmqctl stop) and
// waits for the process to exit; Start starts it again with its data.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	cmd, exit := n.cmd, n.exit
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if _, err := n.Ctl(ctx, "stop"); err != nil {
		return err
	}
	select {
	case <-exit:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop %s: %w", n.Name, ctx.Err())
	}
}

// Kill ends the node's processes with SIGKILL, as a crash of its machine
// would, and waits for them to exit.
func (n *Node) Kill() error {
	n.mu.Lock()
	cmd, exit := n.cmd, n.exit
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s: %w", n.Name, err)
	}
	<-exit
	return nil
}

// StopApp stops the RabbitMQ application and leaves the Erlang VM running
// (rabbitmqctl stop_app): clients lose their connections; StartApp
// restarts it.
func (n *Node) StopApp(ctx context.Context) error {
	_, err := n.Ctl(ctx, "stop_app")
	return err
}

// StartApp starts the RabbitMQ application after StopApp and waits until it
// runs.
func (n *Node) StartApp(ctx context.Context) error {
	if _, err := n.Ctl(ctx, "start_app"); err != nil {
		return err
	}
	_, err := n.Ctl(ctx, "await_startup")
	return err
}

// Join makes n a member of first's cluster: stop_app, reset, join_cluster,
// start_app (which returns once the application runs). Each CLI call
// starts an Erlang VM: seconds each on a loaded machine.
func (n *Node) Join(ctx context.Context, first *Node) error {
	for _, args := range [][]string{{"stop_app"}, {"reset"}, {"join_cluster", first.Name}, {"start_app"}} {
		if _, err := n.Ctl(ctx, args...); err != nil {
			return fmt.Errorf("join %s to %s: %w", n.Name, first.Name, err)
		}
	}
	return nil
}

// Ctl runs rabbitmqctl -n NODE -q ARGS... on the node and returns its
// output; an error carries the command and its output.
func (n *Node) Ctl(ctx context.Context, args ...string) (string, error) {
	return n.run(ctx, "rabbitmqctl", args...)
}

// Queues runs rabbitmq-queues -n NODE -q ARGS... (for example
// quorum_status QUEUE).
func (n *Node) Queues(ctx context.Context, args ...string) (string, error) {
	return n.run(ctx, "rabbitmq-queues", args...)
}

func (n *Node) run(ctx context.Context, tool string, args ...string) (string, error) {
	full := append([]string{"-n", n.Name, "-q"}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(n.bin, tool), full...)
	cmd.Env = n.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", tool, strings.Join(full, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// QueueLeader returns the name of the node that leads quorum queue queue of
// the default virtual host, asking node n.
func (n *Node) QueueLeader(ctx context.Context, queue string) (string, error) {
	out, err := n.Ctl(ctx, "list_queues", "--no-table-headers", "name", "leader")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		name, leader, ok := strings.Cut(line, "\t")
		if ok && name == queue && strings.TrimSpace(leader) != "" {
			return strings.TrimSpace(leader), nil
		}
	}
	return "", fmt.Errorf("queue %s has no leader in list_queues on %s:\n%s", queue, n.Name, out)
}

// Running reports whether the node's process runs.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// halt stops the node for cleanup: gracefully within 30 seconds, else by
// SIGKILL.
func (n *Node) halt() error {
	if !n.Running() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if n.Stop(ctx) == nil {
		return nil
	}
	return n.Kill()
}

// logTail logs the end of the node's log, for a failed test.
func (n *Node) logTail(t testing.TB) {
	t.Logf("rabbitnode: last lines of %s's log:\n%s", n.Name, n.lastLines(30))
}

func (n *Node) lastLines(k int) string {
	var all []string
	for _, f := range []string{n.Name + ".log", "console.log"} {
		b, err := os.ReadFile(filepath.Join(n.Dir, "log", f))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		all = append(all, lines[max(0, len(lines)-k):]...)
	}
	return strings.Join(all, "\n")
}

// findBin returns the directory of rabbitmq-server and rabbitmqctl, or
// skips t (fails it under CI=true).
func findBin(t testing.TB) string {
	t.Helper()
	dirs := []string{os.Getenv("SWITCHYARD_RABBITMQ_BIN"), "/usr/lib/rabbitmq/bin"}
	if p, err := exec.LookPath("rabbitmq-server"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "rabbitmq-server")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "rabbitmqctl")); err == nil {
			return d
		}
	}
	const howTo = "install RabbitMQ (apt-get install rabbitmq-server) or set SWITCHYARD_RABBITMQ_BIN to the directory of rabbitmq-server and rabbitmqctl"
	if brokertest.InCI() {
		t.Fatalf("rabbitnode: rabbitmq-server not found under CI=true; %s", howTo)
	}
	t.Skipf("rabbitnode: rabbitmq-server not found; to run this test, %s", howTo)
	return ""
}

// freePorts returns k distinct ports that were free on 127.0.0.1.
func freePorts(k int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range k {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
