package rabbitmq

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// TestWaitUnblocked: publishes wait while the broker blocks the connection
// (resource alarm), bounded by their context, and go on when it unblocks.
func TestWaitUnblocked(t *testing.T) {
	l := &link{name: "publish", cfg: &Config{}, nodes: []node{{addr: "127.0.0.1:5672"}}, log: slog.New(slog.NewTextHandler(io.Discard, nil)), changed: make(chan struct{}), stopped: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.done = l.ctx.Done()
	ctx := context.Background()

	require.NoError(t, l.waitUnblocked(ctx), "not blocked")
	l.setBlocked(nil, true, "memory")
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	assert.Equal(t, context.DeadlineExceeded, l.waitUnblocked(short))

	go func() {
		time.Sleep(50 * time.Millisecond)
		l.setBlocked(nil, false, "")
	}()
	require.NoError(t, l.waitUnblocked(ctx))

	l.setBlocked(nil, true, "disk")
	l.cancel()
	assert.ErrorIs(t, l.waitUnblocked(ctx), pubsub.ErrClosed)
	l.set(nil)
	assert.NoError(t, l.waitUnblocked(ctx), "a new connection starts unblocked")
}
