package health_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/switchyard-go/switchyard/examples/internal/health"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
	"github.com/switchyard-go/switchyard/transport"
)

// get serves one GET of path on a mux with Register(checks...) and returns
// the status, content type and body.
func get(t *testing.T, path string, checks ...health.Check) (int, string, string) {
	t.Helper()
	mux := http.NewServeMux()
	health.Register(mux, checks...)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	return rec.Code, rec.Header().Get("Content-Type"), string(body)
}

func readyz(t *testing.T, checks ...health.Check) (int, health.Report) {
	t.Helper()
	code, ct, body := get(t, "/readyz", checks...)
	require.Equal(t, "application/json", ct)
	var rep health.Report
	require.NoError(t, json.Unmarshal([]byte(body), &rep), body)
	return code, rep
}

func openMem(t *testing.T, opts ...pubsub.BrokerOption) pubsub.Broker {
	t.Helper()
	b, err := transport.Open(context.Background(), "mem://health-"+pubsub.NewID()[:8], opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestLive(t *testing.T) {
	code, ct, body := get(t, "/healthz", health.Check{Name: "broker", Ping: func(context.Context) error { return errors.New("down") }})
	assert.Equal(t, http.StatusOK, code, "liveness does not depend on the checks")
	assert.Equal(t, "text/plain; charset=utf-8", ct)
	assert.Equal(t, "ok\n", body)
}

// TestReadyBroker: 200 while the mem:// broker is open; 503 naming the
// broker once it is closed (Ping returns pubsub.ErrClosed), also through
// otelpubsub.Instrument.
func TestReadyBroker(t *testing.T) {
	for _, wrap := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "otelpubsub"}[wrap], func(t *testing.T) {
			var opts []pubsub.BrokerOption
			if wrap {
				opts = append(opts, otelpubsub.Instrument())
			}
			b := openMem(t, opts...)
			code, rep := readyz(t, health.Broker(b))
			assert.Equal(t, http.StatusOK, code)
			assert.Equal(t, health.Report{Status: "ready", Checks: []health.Result{{Name: "broker", Status: "ok"}}}, rep)

			require.NoError(t, b.Close())
			code, rep = readyz(t, health.Broker(b))
			assert.Equal(t, http.StatusServiceUnavailable, code)
			assert.Equal(t, health.Report{
				Status: "not ready",
				Error:  "not ready: broker: pubsub: closed",
				Checks: []health.Result{{Name: "broker", Status: "failing", Error: "pubsub: closed"}},
			}, rep)
		})
	}
}

// noPing is a broker without pubsub.Pinger.
type noPing struct{ pubsub.Broker }

func TestReadyBrokerWithoutPinger(t *testing.T) {
	code, rep := readyz(t, health.Broker(noPing{openMem(t)}))
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, health.Report{Status: "ready", Checks: []health.Result{{
		Name: "broker", Status: "unchecked",
		Note: "health_test.noPing does not implement pubsub.Pinger: not checked, assumed ready",
	}}}, rep)
}

// TestReadyDatabase: the database check fails once the database is closed,
// and the report names every failing dependency.
func TestReadyDatabase(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "db.sqlite"))
	require.NoError(t, err)
	b := openMem(t)
	code, rep := readyz(t, health.Broker(b), health.Database(db))
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, health.Report{Status: "ready", Checks: []health.Result{{Name: "broker", Status: "ok"}, {Name: "database", Status: "ok"}}}, rep)

	require.NoError(t, db.Close())
	code, rep = readyz(t, health.Broker(b), health.Database(db))
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, health.Report{
		Status: "not ready",
		Error:  "not ready: database: sql: database is closed",
		Checks: []health.Result{{Name: "broker", Status: "ok"}, {Name: "database", Status: "failing", Error: "sql: database is closed"}},
	}, rep)

	require.NoError(t, b.Close())
	code, rep = readyz(t, health.Broker(b), health.Database(db))
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "not ready: broker: pubsub: closed; database: sql: database is closed", rep.Error)
}

func TestReadyNoChecks(t *testing.T) {
	code, _, body := get(t, "/readyz")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"status":"ready","checks":[]}`, body)
}

// TestRunAbandonsHungCheck: a Ping that ignores its context is reported
// failing when the deadline passes, without waiting for it.
func TestRunAbandonsHungCheck(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hung := health.Check{Name: "broker", Ping: func(context.Context) error { <-release; return nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	started := time.Now()
	rep := health.Run(ctx, hung)
	assert.Less(t, time.Since(started), time.Second)
	assert.Equal(t, "not ready", rep.Status)
	require.Len(t, rep.Checks, 1)
	assert.Equal(t, "failing", rep.Checks[0].Status)
	assert.Regexp(t, `^no answer within \d+ms$`, rep.Checks[0].Error)
}
