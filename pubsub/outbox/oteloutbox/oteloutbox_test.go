package oteloutbox_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	_ "modernc.org/sqlite"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
	"github.com/switchyard-go/switchyard/pubsub/outbox/oteloutbox"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// failFirst fails the first Publish, as a broker that is briefly away.
type failFirst struct {
	pubsub.Publisher
	calls atomic.Int64
}

func (f *failFirst) Publish(ctx context.Context, topic string, msgs ...*pubsub.Message) error {
	if f.calls.Add(1) == 1 {
		return errors.New("broker away")
	}
	return f.Publisher.Publish(ctx, topic, msgs...)
}

// TestMetrics relays three messages, one too large for the broker, after a
// first Publish that fails, and delivers one twice to an inbox.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	obs := oteloutbox.Observer(oteloutbox.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		oteloutbox.WithAttributes(attribute.String("app", "shop")))

	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "o.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, outbox.Migrate(ctx, db, outbox.Config{}))
	b, err := memory.New(memory.Config{MaxMessageBytes: 100}, pubsub.WithLogger(nil))
	require.NoError(t, err)
	defer b.Close()
	received := make(chan string, 10)
	_, err = b.Subscribe(ctx, "orders", "g", func(_ context.Context, m *pubsub.Message) error {
		received <- m.ID
		return nil
	})
	require.NoError(t, err)

	// The relay's observer: obs, and a signal when the gauge records 0.
	drained := make(chan struct{})
	var once atomic.Bool
	relayObs := obs
	relayObs.OnPending = func(ctx context.Context, p outbox.Pending) {
		obs.OnPending(ctx, p)
		if p.Rows == 0 && once.CompareAndSwap(false, true) {
			close(drained)
		}
	}
	ob, err := outbox.New(db, outbox.Config{
		Publisher: &failFirst{Publisher: b}, Observer: relayObs, StatsInterval: time.Millisecond,
		Backoff: time.Millisecond, MaxBackoff: time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, ob.Publish(ctx, tx, "orders", &pubsub.Message{ID: "a"}, &pubsub.Message{ID: "big", Payload: make([]byte, 200)}, &pubsub.Message{ID: "b"}))
	require.NoError(t, tx.Commit())
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- ob.Run(rctx) }()
	for range 2 {
		select {
		case <-received:
		case <-time.After(10 * time.Second):
			require.FailNow(t, "messages not relayed")
		}
	}
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the pending gauge never reported 0")
	}
	stop()
	require.NoError(t, <-done)

	h := outbox.Idempotent(db, "billing", func(context.Context, *sql.Tx, *pubsub.Message) error { return nil }, outbox.WithInboxObserver(obs))
	m := &pubsub.Message{ID: "a", Attempt: 1}
	require.NoError(t, h(ctx, m))
	require.NoError(t, h(ctx, m))

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	got := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			got[m.Name] = m.Data
		}
	}
	sum := func(name string) (total int64, attrs []attribute.Set) {
		s, ok := got[name].(metricdata.Sum[int64])
		require.True(t, ok, "%s missing", name)
		for _, p := range s.DataPoints {
			total += p.Value
			attrs = append(attrs, p.Attributes)
		}
		return total, attrs
	}
	pub, attrs := sum(oteloutbox.MetricPublished)
	assert.Equal(t, int64(2), pub)
	topic, _ := attrs[0].Value("messaging.destination.name")
	assert.Equal(t, "orders", topic.AsString())
	app, _ := attrs[0].Value("app")
	assert.Equal(t, "shop", app.AsString())
	failed, attrs := sum(oteloutbox.MetricFailed)
	assert.Equal(t, int64(3), failed, "the first Publish of all three failed")
	assert.True(t, attrs[0].HasValue("error.type"))
	rejected, _ := sum(oteloutbox.MetricRejected)
	assert.Equal(t, int64(1), rejected)
	dups, attrs := sum(oteloutbox.MetricDuplicates)
	assert.Equal(t, int64(1), dups)
	group, _ := attrs[0].Value("messaging.consumer.group.name")
	assert.Equal(t, "billing", group.AsString())

	lag, ok := got[oteloutbox.MetricLag].(metricdata.Histogram[float64])
	require.True(t, ok)
	require.Len(t, lag.DataPoints, 1)
	assert.Equal(t, uint64(2), lag.DataPoints[0].Count)
	assert.Greater(t, lag.DataPoints[0].Sum, 0.0)

	pending, ok := got[oteloutbox.MetricPending].(metricdata.Gauge[int64])
	require.True(t, ok)
	require.Len(t, pending.DataPoints, 1)
	assert.Equal(t, int64(0), pending.DataPoints[0].Value)
	_, ok = got[oteloutbox.MetricPendingAge].(metricdata.Gauge[float64])
	assert.True(t, ok)
}
