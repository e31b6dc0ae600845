package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/switchyard-go/switchyard/internal/redact"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// Reconnection: nats.go redials for ever, every reconnectWait plus jitter,
// and notices a dead connection after pingInterval × maxPingsOut.
const (
	reconnectWait = 250 * time.Millisecond
	reconnectJit  = 250 * time.Millisecond
	pingInterval  = 10 * time.Second
	maxPingsOut   = 3
)

// link tracks whether the connection is up, for publishes that wait for a
// reconnection.
type link struct {
	mu     sync.Mutex
	up     chan struct{} // closed while connected
	closed chan struct{} // closed when the connection is closed for good
}

func newLink() *link {
	l := &link{up: make(chan struct{}), closed: make(chan struct{})}
	close(l.up)
	return l
}

func (l *link) down() {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.up:
		l.up = make(chan struct{})
	default:
	}
}

func (l *link) restored() {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.up:
	default:
		close(l.up)
	}
}

func (l *link) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
}

// errClosed is the error of calls that find the connection closed.
var errClosed = fmt.Errorf("nats: connection closed: %w", driver.ErrClosed)

func (l *link) isClosed() bool {
	select {
	case <-l.closed:
		return true
	default:
		return false
	}
}

// wait blocks until the connection is up, it is closed (ErrClosed), or ctx
// ends.
func (l *link) wait(ctx context.Context) error {
	l.mu.Lock()
	up := l.up
	l.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-l.closed:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// connect dials the servers of cfg (defaults set) and returns the
// connection, which reconnects by itself and logs its events to log.
func connect(ctx context.Context, cfg Config, log *slog.Logger, l *link) (*natsgo.Conn, error) {
	s, err := parseServers(cfg.URL)
	if err != nil {
		return nil, err
	}
	hosts := strings.Join(s.hosts, ",")
	opts := []natsgo.Option{
		natsgo.Name(cfg.Name),
		natsgo.Timeout(cfg.ConnectTimeout),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(reconnectWait),
		natsgo.ReconnectJitter(reconnectJit, reconnectJit),
		natsgo.PingInterval(pingInterval),
		natsgo.MaxPingsOutstanding(maxPingsOut),
		natsgo.DisconnectErrHandler(func(nc *natsgo.Conn, err error) {
			l.down()
			if nc.IsClosed() {
				return // closed on purpose
			}
			log.Warn("nats: connection lost; reconnecting", "servers", hosts, "err", err)
		}),
		natsgo.ReconnectHandler(func(nc *natsgo.Conn) {
			l.restored()
			log.Info("nats: connection restored", "server", nc.ConnectedAddr())
		}),
		natsgo.ClosedHandler(func(*natsgo.Conn) { l.close() }),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, sub *natsgo.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("nats: asynchronous error", "subject", subject, "err", err)
		}),
	}
	user, password, token := s.user, s.password, s.token
	if user == "" && token == "" {
		user, password, token = cfg.User, cfg.Password, cfg.Token
	}
	switch {
	case user != "":
		opts = append(opts, natsgo.UserInfo(user, password))
	case token != "":
		opts = append(opts, natsgo.Token(token))
	}
	if cfg.CredsFile != "" {
		opts = append(opts, natsgo.UserCredentials(cfg.CredsFile))
	}
	if cfg.NKeySeedFile != "" {
		o, err := natsgo.NkeyOptionFromSeed(cfg.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats: nkey seed file %s: %w", cfg.NKeySeedFile, err)
		}
		opts = append(opts, o)
	}
	if cfg.TLSConfig != nil {
		opts = append(opts, natsgo.Secure(cfg.TLSConfig))
	}
	if cfg.RootCAsFile != "" {
		opts = append(opts, natsgo.RootCAs(cfg.RootCAsFile))
	}
	if cfg.CertFile != "" {
		opts = append(opts, natsgo.ClientCert(cfg.CertFile, cfg.KeyFile))
	}
	opts = append(opts, cfg.Options...)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		nc  *natsgo.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := natsgo.Connect(strings.Join(s.urls, ","), opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("nats: connect to %s: %w", hosts, redact.Err(redact.Err(r.err, password), token))
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// transient reports whether err may go away by itself: the connection is
// down or reconnecting, JetStream is still starting or electing a leader,
// a request timed out.
func transient(err error) bool {
	switch {
	case errors.Is(err, natsgo.ErrDisconnected), errors.Is(err, natsgo.ErrConnectionReconnecting),
		errors.Is(err, natsgo.ErrTimeout), errors.Is(err, natsgo.ErrNoResponders),
		errors.Is(err, natsgo.ErrReconnectBufExceeded), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return transientJS(err)
}
