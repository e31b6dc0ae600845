package cmdutil_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport"
)

// TestLazyBroker: until the broker opens, calls fail at once with
// ErrNotConnected (naming the last failure); once it opens they are the
// broker's.
func TestLazyBroker(t *testing.T) {
	ctx := context.Background()
	var tries atomic.Int32
	url := "mem://lazy-" + pubsub.NewID()[:8]
	l := cmdutil.NewLazyBroker(func(ctx context.Context) (pubsub.Broker, error) {
		if tries.Add(1) < 3 {
			return nil, errors.New("connection refused")
		}
		return transport.Open(ctx, url)
	}, url, slog.New(slog.DiscardHandler))
	defer l.Close()

	start := time.Now()
	err := l.Publish(ctx, "t", pubsub.NewMessage([]byte("x")))
	assert.ErrorIs(t, err, cmdutil.ErrNotConnected)
	assert.Less(t, time.Since(start), 100*time.Millisecond, "fails at once, not after a timeout")
	assert.ErrorIs(t, l.Ping(ctx), cmdutil.ErrNotConnected)

	select {
	case <-l.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("not connected after 5s")
	}
	assert.Equal(t, int32(3), tries.Load())
	require.NoError(t, l.Ping(ctx))
	require.NoError(t, l.CreateGroup(ctx, "t", "g"))
	require.NoError(t, l.Publish(ctx, "t", pubsub.NewMessage([]byte("x"))))
}
