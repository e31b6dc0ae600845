package e2e_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/activity"
	"github.com/switchyard-go/switchyard/examples/analytics"
	"github.com/switchyard-go/switchyard/examples/audit"
	"github.com/switchyard-go/switchyard/examples/exporter"
	"github.com/switchyard-go/switchyard/examples/internal/health"
	"github.com/switchyard-go/switchyard/examples/internal/testdb"
	"github.com/switchyard-go/switchyard/examples/notifier"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/transactions"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/examples/webhooksink"
	"github.com/switchyard-go/switchyard/pubsub"
)

// TestProbes: every service answers GET /healthz with 200 "ok" and GET
// /readyz with 200 while its broker (and database) answer; once its broker
// handle is closed, /readyz answers 503 naming the broker, and /healthz
// still 200. A broker without pubsub.Pinger is reported ready, unchecked.
func TestProbes(t *testing.T) {
	e := newEnv(t, "mem://e2e-"+pubsub.NewID()[:12])
	ctx := context.Background()
	store, err := txstore.Open(ctx, testdb.SQLite(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	files, err := storage.NewDir(t.TempDir())
	require.NoError(t, err)

	type service struct {
		name string
		db   bool // has a database check
		run  func(ctx context.Context, b pubsub.Broker, ln net.Listener) error
	}
	services := []service{
		{name: "audit", run: func(ctx context.Context, b pubsub.Broker, ln net.Listener) error {
			return audit.Run(ctx, audit.Deps{Subscriber: b, Namespace: e.ns, Listener: ln, Logger: e.log})
		}},
		{name: "analytics", run: func(ctx context.Context, b pubsub.Broker, ln net.Listener) error {
			return analytics.Run(ctx, analytics.Deps{Subscriber: b, Namespace: e.ns, Listener: ln, Logger: e.log})
		}},
		{name: "notifier", run: func(ctx context.Context, b pubsub.Broker, ln net.Listener) error {
			return notifier.Run(ctx, notifier.Deps{Subscriber: b, Namespace: e.ns, Listener: ln, Logger: e.log})
		}},
		{name: "exporter", db: true, run: func(ctx context.Context, b pubsub.Broker, ln net.Listener) error {
			return exporter.Run(ctx, exporter.Deps{Broker: b, Store: store, Storage: files, Namespace: e.ns, Listener: ln, Logger: e.log})
		}},
		{name: "transactions", db: true, run: func(ctx context.Context, b pubsub.Broker, ln net.Listener) error {
			return transactions.Run(ctx, transactions.Deps{Store: store, Storage: files, Publisher: b, Namespace: e.ns, Listener: ln, Logger: e.log})
		}},
		{name: "activity", run: func(ctx context.Context, b pubsub.Broker, ln net.Listener) error {
			return activity.Run(ctx, activity.Deps{Publisher: b, Namespace: e.ns, Listener: ln, Logger: e.log})
		}},
	}
	brokers := make([]pubsub.Broker, len(services))
	urls := make([]string, len(services))
	for i, s := range services {
		brokers[i] = e.broker(t)
		urls[i] = start(t, s.name, func(ctx context.Context, ln net.Listener) error { return s.run(ctx, brokers[i], ln) })
	}
	sink := start(t, "webhook-sink", func(ctx context.Context, ln net.Listener) error {
		return webhooksink.Run(ctx, webhooksink.Deps{Listener: ln, Logger: e.log})
	})
	unpinged := start(t, "activity (no Pinger)", func(ctx context.Context, ln net.Listener) error {
		return activity.Run(ctx, activity.Deps{Publisher: &flakyBroker{Broker: e.broker(t)}, Namespace: e.ns, Listener: ln, Logger: e.log})
	})

	dbOK := health.Result{Name: "database", Status: "ok"}
	for i, s := range services {
		assertLive(t, s.name, urls[i])
		want := health.Report{Status: "ready", Checks: []health.Result{{Name: "broker", Status: "ok"}}}
		if s.db {
			want.Checks = append(want.Checks, dbOK)
		}
		assertReady(t, s.name, urls[i], http.StatusOK, want)
	}
	assertLive(t, "webhook-sink", sink)
	assertReady(t, "webhook-sink", sink, http.StatusOK, health.Report{Status: "ready", Checks: []health.Result{}})
	assertReady(t, "activity (no Pinger)", unpinged, http.StatusOK, health.Report{Status: "ready", Checks: []health.Result{{
		Name: "broker", Status: "unchecked", Note: "*e2e_test.flakyBroker does not implement pubsub.Pinger: not checked, assumed ready",
	}}})

	for _, b := range brokers {
		require.NoError(t, b.Close())
	}
	for i, s := range services {
		assertLive(t, s.name, urls[i])
		want := health.Report{
			Status: "not ready",
			Error:  "not ready: broker: pubsub: closed",
			Checks: []health.Result{{Name: "broker", Status: "failing", Error: "pubsub: closed"}},
		}
		if s.db {
			want.Checks = append(want.Checks, dbOK)
		}
		assertReady(t, s.name, urls[i], http.StatusServiceUnavailable, want)
	}
}

func assertLive(t *testing.T, name, base string) {
	t.Helper()
	code, body := call(t, http.MethodGet, base+"/healthz", nil)
	assert.Equal(t, http.StatusOK, code, "%s /healthz", name)
	assert.Equal(t, "ok\n", string(body), "%s /healthz", name)
}

func assertReady(t *testing.T, name, base string, wantCode int, want health.Report) {
	t.Helper()
	code, body := call(t, http.MethodGet, base+"/readyz", nil)
	assert.Equal(t, wantCode, code, "%s /readyz: %s", name, body)
	var got health.Report
	require.NoError(t, json.Unmarshal(body, &got), "%s /readyz: %s", name, body)
	assert.Equal(t, want, got, "%s /readyz", name)
}
