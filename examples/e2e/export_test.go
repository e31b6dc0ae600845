package e2e_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/exporter"
	"github.com/switchyard-go/switchyard/examples/internal/testdb"
	"github.com/switchyard-go/switchyard/examples/notifier"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/transactions"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/examples/webhooksink"
	"github.com/switchyard-go/switchyard/pubsub"
)

// seedRows is the size of the test database.
const seedRows = 2000

// exportStack is the export example running.
type exportStack struct {
	api     string
	store   *txstore.Store
	files   storage.Storage
	hooks   *webhooksink.Sink
	sink    string
	workers []string
}

type exportConfig struct {
	dbURL     string
	exporters int
	// publisher, when not nil, is the transactions service's broker.
	publisher pubsub.Broker
	// files wraps the exporters' storage.
	files func(storage.Storage) storage.Storage
	// maxAttempts of the exporters (default 5).
	maxAttempts int
}

func startExportStack(t *testing.T, e *env, cfg exportConfig) exportStack {
	ctx := context.Background()
	if cfg.dbURL == "" {
		cfg.dbURL = testdb.SQLite(t)
	}
	store, err := txstore.Open(ctx, cfg.dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	_, err = store.Seed(ctx, seedRows, nil)
	require.NoError(t, err)
	files, err := storage.NewDir(t.TempDir())
	require.NoError(t, err)

	s := exportStack{store: store, files: files, hooks: webhooksink.New(e.log)}
	s.sink = start(t, "webhook-sink", func(ctx context.Context, ln net.Listener) error {
		return webhooksink.Run(ctx, webhooksink.Deps{Sink: s.hooks, Listener: ln, Logger: e.log})
	})
	start(t, "notifier", func(ctx context.Context, ln net.Listener) error {
		return notifier.Run(ctx, notifier.Deps{Subscriber: e.broker(t), Namespace: e.ns, SubscribeOptions: e.fast, Listener: ln, Logger: e.log})
	})
	pub := cfg.publisher
	if pub == nil {
		pub = e.broker(t)
	}
	s.api = start(t, "transactions", func(ctx context.Context, ln net.Listener) error {
		return transactions.Run(ctx, transactions.Deps{Store: store, Storage: files, Publisher: pub, Namespace: e.ns,
			SweepInterval: 100 * time.Millisecond, PublishTimeout: time.Second, Listener: ln, Logger: e.log})
	})
	var workerFiles storage.Storage = files
	if cfg.files != nil {
		workerFiles = cfg.files(files)
	}
	for i := range cfg.exporters {
		name := fmt.Sprintf("exporter-%d", i+1)
		s.workers = append(s.workers, name)
		start(t, name, func(ctx context.Context, ln net.Listener) error {
			return exporter.Run(ctx, exporter.Deps{Broker: e.broker(t), Store: store, Storage: workerFiles, Namespace: e.ns,
				Worker: name, Concurrency: 1, MaxAttempts: cfg.maxAttempts, ProgressEvery: 100, SubscribeOptions: e.fast, Listener: ln, Logger: e.log})
		})
	}
	return s
}

// request posts an async export and returns its RID.
func (s exportStack) request(t *testing.T, start, end, callback string) string {
	t.Helper()
	code, body := call(t, http.MethodPost, s.api+"/api/Export", transactions.ExportRequest{StartDate: start, EndDate: end, CallbackURL: callback})
	require.Equal(t, http.StatusAccepted, code, "%s", body)
	var acc transactions.Accepted
	require.NoError(t, jsonUnmarshal(body, &acc))
	require.Len(t, acc.RID, 26, "128 random bits, base32")
	return acc.RID
}

func (s exportStack) status(t *testing.T, rid string) events.ExportStatus {
	t.Helper()
	var st events.ExportStatus
	require.NoError(t, getJSON(s.api+"/api/Export/Status?RID="+rid, &st))
	return st
}

func (s exportStack) waitStatus(t *testing.T, rid, want string, d time.Duration) events.ExportStatus {
	t.Helper()
	var st events.ExportStatus
	waitFor(t, d, "export "+rid+" "+want, func() error {
		if err := getJSON(s.api+"/api/Export/Status?RID="+rid, &st); err != nil {
			return err
		}
		if st.Status != want {
			return fmt.Errorf("status %s (progress %d, error %q)", st.Status, st.Progress, st.Error)
		}
		return nil
	})
	return st
}

// wantCSV returns the rows the database holds for the range, as CSV records
// after the header.
func (s exportStack) wantCSV(t *testing.T, start, end string) [][]string {
	t.Helper()
	from, to, err := txstore.ParseDateRange(start, end)
	require.NoError(t, err)
	want := [][]string{txstore.CSVHeader}
	require.NoError(t, s.store.EachTransaction(context.Background(), from, to, func(tx *txstore.Transaction) error {
		want = append(want, txstore.CSVRecord(tx))
		return nil
	}))
	return want
}

func parseCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	require.NoError(t, err, "the export is valid RFC 4180 CSV")
	return recs
}

// TestExportAsync: two exporters share the jobs; each completes with the
// database's rows for its range, a download URL through the service, and a
// callback to its CallbackUrl.
func TestExportAsync(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e *env) { testExportAsync(t, e, testdb.SQLite(t)) })
}

// TestExportAsyncPostgres is TestExportAsync on PostgreSQL (over mem://).
func TestExportAsyncPostgres(t *testing.T) {
	testExportAsync(t, newEnv(t, "mem://e2e-"+pubsub.NewID()[:12]), testdb.Postgres(t))
}

func testExportAsync(t *testing.T, e *env, dbURL string) {
	s := startExportStack(t, e, exportConfig{dbURL: dbURL, exporters: 2, files: slowly(100 * time.Millisecond)})
	months := []string{"01", "02", "03", "04", "05", "06"}
	rids := map[string]string{}
	for _, m := range months {
		rids[m] = s.request(t, "2025-"+m+"-01", "2025-"+m+"-28", s.sink+"/hooks/export?fail=1")
	}
	byWorker := map[string]int{}
	for _, m := range months {
		rid := rids[m]
		st := s.waitStatus(t, rid, events.StatusCompleted, 30*time.Second)
		want := s.wantCSV(t, "2025-"+m+"-01", "2025-"+m+"-28")
		assert.Equal(t, int64(len(want)-1), st.Progress, "progress is the rows written")
		require.NotEmpty(t, st.URL)
		u, err := url.Parse(st.URL)
		require.NoError(t, err)
		assert.Equal(t, "/api/Export/Download", u.Path, "downloads go through the service")
		code, body := call(t, http.MethodGet, st.URL, nil)
		require.Equal(t, http.StatusOK, code, "%s", body)
		assert.Equal(t, want, parseCSV(t, body), "the file holds the database's rows for %s", m)
		row, err := s.store.Export(context.Background(), rid)
		require.NoError(t, err)
		byWorker[row.Worker]++
	}
	if e.balancesMembers() {
		assert.Len(t, byWorker, 2, "both exporters took jobs: %v", byWorker)
	} else {
		t.Logf("jobs per exporter: %v (the emulator does not balance a group's members)", byWorker)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for m, rid := range rids {
		c, err := s.hooks.Wait(ctx, func(c webhooksink.Call) bool {
			return c.Path == "/hooks/export" && bytes.Contains(c.Body, []byte(rid))
		})
		require.NoError(t, err, "callback of %s", m)
		var st events.ExportStatus
		require.NoError(t, jsonUnmarshal(c.Body, &st))
		assert.Equal(t, events.StatusCompleted, st.Status)
		assert.Equal(t, rid, st.RID)
		assert.Contains(t, st.URL, "/api/Export/Download?RID="+rid)
		assert.Equal(t, "export.completed", c.Event)
	}
}

// TestExportWhileBrokerDown: a request made while publishing fails is
// acknowledged, stays pending, and completes once the broker is back,
// through the outbox sweeper.
func TestExportWhileBrokerDown(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e *env) {
		flaky := &flakyBroker{Broker: e.broker(t)}
		s := startExportStack(t, e, exportConfig{exporters: 1, publisher: flaky})
		flaky.setDown(true)
		rid := s.request(t, "2025-07-01", "2025-07-31", s.sink+"/hooks/export")
		time.Sleep(500 * time.Millisecond) // several sweeps, all refused
		assert.Equal(t, events.StatusPending, s.status(t, rid).Status)
		flaky.mu.Lock()
		refused := flaky.refused
		flaky.mu.Unlock()
		assert.GreaterOrEqual(t, refused, 2, "the API and the sweeper tried to publish")

		flaky.setDown(false)
		st := s.waitStatus(t, rid, events.StatusCompleted, 30*time.Second)
		assert.Equal(t, int64(len(s.wantCSV(t, "2025-07-01", "2025-07-31"))-1), st.Progress)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := s.hooks.Wait(ctx, func(c webhooksink.Call) bool { return bytes.Contains(c.Body, []byte(rid)) })
		require.NoError(t, err, "callback after the outage")
	})
}

// TestExportFails: an export whose storage keeps failing is retried, then
// marked failed, and its callback says so.
func TestExportFails(t *testing.T) {
	e := newEnv(t, "mem://e2e-"+pubsub.NewID()[:12])
	s := startExportStack(t, e, exportConfig{exporters: 1, maxAttempts: 2, files: func(storage.Storage) storage.Storage { return brokenStorage{} }})
	rid := s.request(t, "2025-01-01", "2025-01-31", s.sink+"/hooks/export")
	st := s.waitStatus(t, rid, events.StatusFailed, 20*time.Second)
	assert.Contains(t, st.Error, "disk on fire")
	assert.Empty(t, st.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := s.hooks.Wait(ctx, func(c webhooksink.Call) bool { return bytes.Contains(c.Body, []byte(rid)) })
	require.NoError(t, err)
	assert.Equal(t, "export.failed", c.Event)
	code, _ := call(t, http.MethodGet, s.api+"/api/Export/Download?RID="+rid, nil)
	assert.Equal(t, http.StatusConflict, code, "a failed export has no file")
}

// TestExportSyncCSV: the synchronous export streams exactly the database's
// rows for the range, on SQLite and PostgreSQL.
func TestExportSyncCSV(t *testing.T) {
	for _, db := range []struct {
		name string
		url  func(testing.TB) string
	}{{"sqlite", testdb.SQLite}, {"postgres", testdb.Postgres}} {
		t.Run(db.name, func(t *testing.T) {
			e := newEnv(t, "mem://e2e-"+pubsub.NewID()[:12])
			s := startExportStack(t, e, exportConfig{dbURL: db.url(t)})
			for _, r := range [][2]string{{"2025-03-01", "2025-03-31"}, {"2025-12-31", "2025-12-31"}, {"2024-01-01", "2024-12-31"}, {"2025-01-01", "2025-12-31"}} {
				resp, err := http.Get(s.api + "/api/Export?StartDate=" + r[0] + "&EndDate=" + r[1])
				require.NoError(t, err)
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
				assert.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
				assert.Contains(t, resp.Header.Get("Content-Disposition"), "transactions_"+r[0]+"_"+r[1]+".csv")
				got := parseCSV(t, body)
				assert.Equal(t, s.wantCSV(t, r[0], r[1]), got, "%s..%s", r[0], r[1])
				if r[0] == "2025-01-01" {
					assert.Len(t, got, seedRows+1, "the whole year is every row")
				}
			}
			assert.Contains(t, s.store.Dialect(), db.name)
		})
	}
}

// TestExportBadInput: bad requests get their 4xx with a message.
func TestExportBadInput(t *testing.T) {
	e := newEnv(t, "mem://e2e-"+pubsub.NewID()[:12])
	s := startExportStack(t, e, exportConfig{}) // no exporter: requests stay pending
	pending := s.request(t, "2025-01-01", "2025-01-02", "")
	for _, tc := range []struct {
		name, method, path string
		body               any
		want               int
		msg                string
	}{
		{"sync malformed date", "GET", "/api/Export?StartDate=2025-1-1&EndDate=2025-01-31", nil, 400, "not a date"},
		{"sync missing EndDate", "GET", "/api/Export?StartDate=2025-01-01", nil, 400, "EndDate is required"},
		{"sync start after end", "GET", "/api/Export?StartDate=2025-02-01&EndDate=2025-01-01", nil, 400, "is after EndDate"},
		{"async malformed date", "POST", "/api/Export", map[string]string{"StartDate": "01/01/2025", "EndDate": "2025-01-31"}, 400, "not a date"},
		{"async start after end", "POST", "/api/Export", map[string]string{"StartDate": "2025-03-01", "EndDate": "2025-01-31"}, 400, "is after EndDate"},
		{"async bad callback", "POST", "/api/Export", map[string]string{"StartDate": "2025-01-01", "EndDate": "2025-01-31", "CallbackUrl": "ftp://x"}, 400, "CallbackUrl"},
		{"async unknown field", "POST", "/api/Export", map[string]string{"StartDate": "2025-01-01", "EndDate": "2025-01-31", "Format": "xlsx"}, 400, "unknown field"},
		{"async not JSON", "POST", "/api/Export", "StartDate=2025-01-01", 400, "body is a JSON string, want a JSON object"},
		{"status unknown RID", "GET", "/api/Export/Status?RID=NOPE", nil, 404, "no export request"},
		{"status missing RID", "GET", "/api/Export/Status", nil, 400, "RID is required"},
		{"download unknown RID", "GET", "/api/Export/Download?RID=NOPE", nil, 404, "no export request"},
		{"download not ready", "GET", "/api/Export/Download?RID=" + pending, nil, 409, "not completed"},
		{"wrong method", "DELETE", "/api/Export", nil, 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, tc.method, s.api+tc.path, tc.body)
			assert.Equal(t, tc.want, code, "%s", body)
			assert.Contains(t, string(body), tc.msg)
		})
	}
	assert.Equal(t, events.StatusPending, s.status(t, pending).Status)
	big := bytes.Repeat([]byte("x"), 70<<10)
	resp, err := http.Post(s.api+"/api/Export", "application/json", bytes.NewReader(big))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
}

// slowly wraps storage so that committing a file takes d: jobs last long
// enough for the second exporter to take the next one.
func slowly(d time.Duration) func(storage.Storage) storage.Storage {
	return func(s storage.Storage) storage.Storage { return slowStorage{s, d} }
}

type slowStorage struct {
	storage.Storage
	d time.Duration
}

func (s slowStorage) Create(ctx context.Context, key string) (io.WriteCloser, error) {
	w, err := s.Storage.Create(ctx, key)
	if err != nil {
		return nil, err
	}
	return slowWriter{w, s.d}, nil
}

type slowWriter struct {
	io.WriteCloser
	d time.Duration
}

func (w slowWriter) Close() error { time.Sleep(w.d); return w.WriteCloser.Close() }

// brokenStorage fails every write.
type brokenStorage struct{}

func (brokenStorage) Create(context.Context, string) (io.WriteCloser, error) {
	return nil, errors.New("disk on fire")
}

func (brokenStorage) Open(context.Context, string) (io.ReadCloser, error) {
	return nil, storage.ErrNotFound
}
