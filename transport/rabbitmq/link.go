package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/internal/redact"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// Reconnection backoff: the delay between attempts doubles from
// reconnectMin up to reconnectMax, with jitter.
const (
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 5 * time.Second
)

// link is one supervised AMQP connection. A supervisor goroutine watches it
// and, when it is lost, redials with backoff until it succeeds or the link
// is closed. Users get the current connection with get, which waits while
// the link is down. amqp091's own (experimental) recovery is not used: it
// reuses channel objects across connections, where old delivery tags and
// deferred confirmations must not leak into the new connection.
type link struct {
	name string // "publish", "consume" or "admin", for logs and errors
	cfg  *Config
	log  *slog.Logger
	// nodes are the broker's addresses (several for a cluster), addrs
	// their host:port list for errors.
	nodes []node
	addrs string

	mu        sync.Mutex
	conn      *amqp.Connection // nil while down
	node      int              // index in nodes of conn's node, or of the last one tried
	changed   chan struct{}    // closed and replaced whenever conn changes
	blocked   bool             // the broker blocked conn (connection.blocked)
	unblocked chan struct{}    // closed when blocked turns false
	ctx       context.Context  // cancelled by close
	cancel    context.CancelFunc
	done      <-chan struct{} // ctx.Done()
	stopped   chan struct{}   // closed when the supervisor exited
}

// newLink dials the first connection (returning its error) and starts the
// supervisor, which logs to log.
func newLink(ctx context.Context, cfg *Config, log *slog.Logger, name string) (*link, error) {
	nodes, err := parseNodes(cfg.URL)
	if err != nil {
		return nil, err
	}
	l := &link{name: name, cfg: cfg, log: log, nodes: nodes, addrs: addrList(nodes), changed: make(chan struct{}), stopped: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.done = l.ctx.Done()
	conn, err := l.dialAny(ctx, 0)
	if err != nil {
		l.cancel()
		return nil, err
	}
	lost := conn.NotifyClose(make(chan *amqp.Error, 1))
	l.set(conn)
	go l.supervise(conn, lost)
	return l, nil
}

// addr returns host:port of the current node (or of the last one tried),
// for messages.
func (l *link) addr() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nodes[l.node].addr
}

// dialAny tries the nodes in turn, beginning with nodes[first], and returns
// the first connection opened; each attempt is bounded by
// cfg.ConnectTimeout. If none accepts, the error lists each node's failure.
// If ctx ends first, ctx's error is returned as it is.
func (l *link) dialAny(ctx context.Context, first int) (*amqp.Connection, error) {
	var errs []error
	for k := range l.nodes {
		i := (first + k) % len(l.nodes)
		l.mu.Lock()
		l.node = i
		l.mu.Unlock()
		conn, err := l.dial(ctx, l.nodes[i])
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, err)
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, fmt.Errorf("rabbitmq: no node of %s accepts the %s connection: %w", l.addrs, l.name, errors.Join(errs...))
}

// dial opens one connection to nd, bounded by ctx and cfg.ConnectTimeout.
// Its errors name the node's host:port and never carry the password; if ctx
// ends first, ctx's error is returned as it is.
func (l *link) dial(ctx context.Context, nd node) (*amqp.Connection, error) {
	dctx, cancel := context.WithTimeout(ctx, l.cfg.ConnectTimeout)
	defer cancel()
	var (
		mu      sync.Mutex
		netConn net.Conn
	)
	config := amqp.Config{
		Properties: connectionProperties(l.name),
		Dial: func(network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Bound the TLS and AMQP handshakes too; amqp091 clears the
			// deadline once the connection is open.
			deadline, _ := dctx.Deadline()
			if err := c.SetDeadline(deadline); err != nil {
				_ = c.Close()
				return nil, err
			}
			mu.Lock()
			netConn = c
			mu.Unlock()
			return c, nil
		},
	}
	if l.cfg.TLSConfig != nil {
		config.TLSClientConfig = l.cfg.TLSConfig.Clone()
	}
	// A cancelled ctx interrupts the handshake by expiring the deadline.
	stop := context.AfterFunc(dctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if netConn != nil {
			_ = netConn.SetDeadline(time.Unix(1, 0))
		}
	})
	conn, err := amqp.DialConfig(nd.url, config)
	if !stop() && err == nil {
		// The deadline may have been cut after the handshake: do not trust
		// the connection.
		_ = conn.Close()
		err = dctx.Err()
	}
	if err == nil {
		return conn, nil
	}
	if deadline, _ := dctx.Deadline(); !time.Now().Before(deadline) {
		// The I/O deadline fired with the context's timer, which may not
		// have run yet.
		<-dctx.Done()
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if dctx.Err() != nil {
		err = fmt.Errorf("no connection within %v (connect timeout): %w", l.cfg.ConnectTimeout, err)
	}
	return nil, fmt.Errorf("rabbitmq: connect to %s (%s connection): %w", nd.addr, l.name, redact.Err(err, urlPassword(l.cfg.URL)))
}

// connectionProperties are the client properties of a connection: amqp091's
// defaults and a connection_name that management tools show.
func connectionProperties(name string) amqp.Table {
	p := amqp.NewConnectionProperties()
	p["connection_name"] = "switchyard " + name
	return p
}

// set makes conn (nil: none) the current connection, which is not blocked,
// and watches its blocked/unblocked notifications.
func (l *link) set(conn *amqp.Connection) {
	l.mu.Lock()
	l.conn = conn
	close(l.changed)
	l.changed = make(chan struct{})
	l.setBlockedLocked(false)
	l.mu.Unlock()
	if conn != nil {
		blocks := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
		go func() {
			for b := range blocks {
				l.setBlocked(conn, b.Active, b.Reason)
			}
		}()
	}
}

// setBlocked records that conn was blocked (active) or unblocked by the
// broker's flow control, if it is still the current connection.
func (l *link) setBlocked(conn *amqp.Connection, active bool, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != conn || l.blocked == active {
		return
	}
	l.setBlockedLocked(active)
	if active {
		l.log.Warn("rabbitmq: broker blocked the connection (resource alarm); publishes wait", "connection", l.name, "broker", l.nodes[l.node].addr, "reason", reason)
	} else {
		l.log.Info("rabbitmq: broker unblocked the connection", "connection", l.name, "broker", l.nodes[l.node].addr)
	}
}

func (l *link) setBlockedLocked(active bool) {
	switch {
	case active && !l.blocked:
		l.unblocked = make(chan struct{})
	case !active && l.blocked:
		close(l.unblocked)
	}
	l.blocked = active
}

// isBlocked reports whether the broker blocks the connection (a resource
// alarm).
func (l *link) isBlocked() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.blocked
}

// waitUnblocked returns once the broker does not block the connection (it
// blocks publishing connections during a resource alarm, and would stall
// their writes), ctx ends or the link is closed.
func (l *link) waitUnblocked(ctx context.Context) error {
	l.mu.Lock()
	blocked, unblocked := l.blocked, l.unblocked
	l.mu.Unlock()
	if !blocked {
		return nil
	}
	select {
	case <-unblocked:
		return nil
	case <-l.done:
		return driver.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// supervise waits for conn to be lost, then redials until it succeeds or the
// link is closed.
func (l *link) supervise(conn *amqp.Connection, lost chan *amqp.Error) {
	defer close(l.stopped)
	log := l.log
	for {
		select {
		case err := <-lost:
			l.set(nil)
			log.Warn("rabbitmq: connection lost; reconnecting", "connection", l.name, "broker", l.addr(), "err", err)
		case <-l.done:
			_ = conn.Close()
			l.set(nil)
			return
		}
		start := time.Now()
		pause := reconnectMin
		// Begin with the node after the lost one: in a cluster, the lost
		// node is likely down.
		l.mu.Lock()
		next := (l.node + 1) % len(l.nodes)
		l.mu.Unlock()
		for attempt := 1; ; attempt++ {
			select {
			case <-time.After(pause/2 + rand.N(pause/2+1)):
			case <-l.done:
				return
			}
			c, err := l.dialAny(l.ctx, next)
			if err == nil {
				conn = c
				break
			}
			log.Debug("rabbitmq: reconnection attempt failed", "connection", l.name, "attempt", attempt, "err", err)
			l.mu.Lock()
			next = (l.node + 1) % len(l.nodes)
			l.mu.Unlock()
			pause = min(2*pause, reconnectMax)
		}
		lost = conn.NotifyClose(make(chan *amqp.Error, 1))
		l.set(conn)
		log.Info("rabbitmq: connection restored", "connection", l.name, "broker", l.addr(), "outage", time.Since(start).Round(time.Millisecond))
	}
}

// get returns the current connection, waiting while the link is down. It
// returns driver.ErrClosed once the link is closed, and ctx's error if ctx
// ends first.
func (l *link) get(ctx context.Context) (*amqp.Connection, error) {
	for {
		l.mu.Lock()
		conn, changed := l.conn, l.changed
		l.mu.Unlock()
		select {
		case <-l.done:
			return nil, driver.ErrClosed
		default:
		}
		if conn != nil && !conn.IsClosed() {
			return conn, nil
		}
		select {
		case <-changed:
		case <-l.done:
			return nil, driver.ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// up reports whether the link has a connection that is not known to be
// closed.
func (l *link) up() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn != nil && !l.conn.IsClosed()
}

// waitChange blocks until the connection differs from conn (it was lost or
// replaced), ctx ends or the link is closed.
func (l *link) waitChange(ctx context.Context, conn *amqp.Connection) error {
	for {
		l.mu.Lock()
		cur, changed := l.conn, l.changed
		l.mu.Unlock()
		if cur != conn {
			return nil
		}
		select {
		case <-changed:
		case <-l.done:
			return driver.ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// close closes the connection and stops the supervisor. It is idempotent.
func (l *link) close() error {
	l.cancel()
	<-l.stopped
	return nil
}

// connLost reports whether err, from an operation on conn (nil: unknown),
// means that the connection is lost or going down rather than that the
// broker refused the operation: conn is closed, or err is amqp091's ErrClosed
// or a connection-level (hard) AMQP error.
func connLost(conn *amqp.Connection, err error) bool {
	if conn != nil && conn.IsClosed() {
		return true
	}
	var ae *amqp.Error
	return errors.Is(err, amqp.ErrClosed) || (errors.As(err, &ae) && !ae.Recover)
}

// isSoftErr reports whether err is a channel-level error of the broker
// (404 NOT_FOUND, 406 PRECONDITION_FAILED, ...): the broker refused an
// operation and closed the channel, the connection stays up.
func isSoftErr(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Recover
}
