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
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/exporter"
	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/examples/internal/testdb"
	"github.com/switchyard-go/switchyard/examples/notifier"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/transactions"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/examples/webhooksink"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
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
	// workerFiles is the exporters' storage; maxAttempts theirs.
	workerFiles storage.Storage
	maxAttempts int
}

type exportConfig struct {
	dbURL     string
	exporters int
	// publisher, when not nil, is the transactions service's broker.
	publisher pubsub.Publisher
	// before runs once the database is seeded, before the services start.
	before func(store *txstore.Store, files *storage.Bucket)
	// files wraps the exporters' storage.
	files func(storage.Storage) storage.Storage
	// maxAttempts of the exporters (default 5).
	maxAttempts int
	// storageURL is the storage (default a new directory).
	storageURL string
}

func startExportStack(t *testing.T, e *env, cfg exportConfig) *exportStack {
	ctx := context.Background()
	if cfg.dbURL == "" {
		cfg.dbURL = testdb.SQLite(t)
	}
	store, err := txstore.Open(ctx, cfg.dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	_, err = store.Seed(ctx, seedRows, nil)
	require.NoError(t, err)
	var files *storage.Bucket
	if cfg.storageURL != "" {
		files, err = storage.Open(cfg.storageURL)
	} else {
		files, err = storage.NewDir(t.TempDir())
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = files.Close() })
	if cfg.before != nil {
		cfg.before(store, files)
	}

	s := &exportStack{store: store, files: files, hooks: webhooksink.New(e.log)}
	s.sink = start(t, "webhook-sink", func(ctx context.Context, ln net.Listener) error {
		return webhooksink.Run(ctx, webhooksink.Deps{Sink: s.hooks, Listener: ln, Logger: e.log})
	})
	start(t, "notifier", func(ctx context.Context, ln net.Listener) error {
		return notifier.Run(ctx, notifier.Deps{Subscriber: e.broker(t), Namespace: e.ns, SubscribeOptions: e.fast, Listener: ln, Logger: e.log})
	})
	var pub pubsub.Publisher = cfg.publisher
	if pub == nil {
		pub = e.broker(t)
	}
	s.api = start(t, "transactions", func(ctx context.Context, ln net.Listener) error {
		return transactions.Run(ctx, transactions.Deps{Store: store, Storage: files, Publisher: pub, Namespace: e.ns,
			SweepInterval: 100 * time.Millisecond, Outbox: fastRelay, Listener: ln, Logger: e.log})
	})
	s.workerFiles = files
	if cfg.files != nil {
		s.workerFiles = cfg.files(files)
	}
	s.maxAttempts = cfg.maxAttempts
	for i := range cfg.exporters {
		s.startExporter(t, e, fmt.Sprintf("exporter-%d", i+1))
	}
	return s
}

// startExporter starts an exporter worker named name.
func (s *exportStack) startExporter(t *testing.T, e *env, name string) {
	s.workers = append(s.workers, name)
	start(t, name, func(ctx context.Context, ln net.Listener) error {
		return exporter.Run(ctx, exporter.Deps{Broker: e.broker(t), Store: s.store, Storage: s.workerFiles, Namespace: e.ns,
			Worker: name, Concurrency: 1, MaxAttempts: s.maxAttempts, ProgressEvery: 100, Lease: 3 * time.Second, Outbox: fastRelay,
			SubscribeOptions: e.fast, Listener: ln, Logger: e.log})
	})
}

// fastRelay makes the outbox relays poll more often than by default (a
// relay is woken at once by what its own process stores; polling finds
// what other services stored) and back off less.
var fastRelay = outbox.Config{PollInterval: 200 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}

// request posts an async export and returns its RID.
func (s *exportStack) request(t *testing.T, start, end, callback string) string {
	t.Helper()
	code, body := call(t, http.MethodPost, s.api+"/api/Export", transactions.ExportRequest{StartDate: start, EndDate: end, CallbackURL: callback})
	require.Equal(t, http.StatusAccepted, code, "%s", body)
	var acc transactions.Accepted
	require.NoError(t, jsonUnmarshal(body, &acc))
	require.Len(t, acc.RID, 26, "128 random bits, base32")
	return acc.RID
}

func (s *exportStack) status(t *testing.T, rid string) events.ExportStatus {
	t.Helper()
	var st events.ExportStatus
	require.NoError(t, getJSON(s.api+"/api/Export/Status?RID="+rid, &st))
	return st
}

func (s *exportStack) waitStatus(t *testing.T, rid, want string, d time.Duration) events.ExportStatus {
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
func (s *exportStack) wantCSV(t *testing.T, start, end string) [][]string {
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
		assert.Empty(t, u.Host, "no PublicURL: the URL is relative, never built from the request's Host")
		code, body := call(t, http.MethodGet, s.api+st.URL, nil)
		require.Equal(t, http.StatusOK, code, "%s", body)
		assert.Equal(t, want, parseCSV(t, body), "the file holds the database's rows for %s", m)
		row, err := s.store.Export(context.Background(), rid)
		require.NoError(t, err)
		byWorker[row.Worker]++
	}
	// A forged Host header changes nothing: the download URL is never built
	// from it (item 7 of the examples' hardening).
	req, err := http.NewRequest(http.MethodGet, s.api+"/api/Export/Status?RID="+rids["01"], nil)
	require.NoError(t, err)
	req.Host = "evil.example.com"
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	forged, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", forged)
	assert.Contains(t, string(forged), "/api/Export/Download?RID="+rids["01"])
	assert.NotContains(t, string(forged), "evil.example.com", "the request's Host is not echoed")
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

// TestExportWhileBrokerDown: the transactions service starts while its
// broker is unreachable (not ready, but serving); a request made meanwhile
// is answered 202 at once, stays pending in the outbox, and completes once
// the broker can be reached, published by the relay; a publish refused
// later is retried by the relay too.
func TestExportWhileBrokerDown(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e *env) {
		var up atomic.Bool
		lazy := cmdutil.NewLazyBroker(func(ctx context.Context) (pubsub.Broker, error) {
			if !up.Load() {
				return nil, errBrokerDown
			}
			return openBroker(ctx, e.url, pubsub.WithLogger(e.log))
		}, e.url, e.log)
		t.Cleanup(func() { _ = lazy.Close() })
		// No exporter yet: it would need the broker, and its outbox relay
		// would publish the request (any relay publishes the table's rows).
		s := startExportStack(t, e, exportConfig{publisher: lazy})
		code, body := call(t, http.MethodGet, s.api+"/readyz", nil)
		assert.Equal(t, http.StatusServiceUnavailable, code)
		assert.Contains(t, string(body), "broker not connected yet")

		started := time.Now()
		rid := s.request(t, "2025-07-01", "2025-07-31", s.sink+"/hooks/export")
		assert.Less(t, time.Since(started), 3*time.Second, "answered at once, without waiting for the broker")
		time.Sleep(300 * time.Millisecond) // several relay attempts, all refused
		assert.Equal(t, events.StatusPending, s.status(t, rid).Status)

		up.Store(true)
		s.startExporter(t, e, "exporter-1")
		st := s.waitStatus(t, rid, events.StatusCompleted, 30*time.Second)
		assert.Equal(t, int64(len(s.wantCSV(t, "2025-07-01", "2025-07-31"))-1), st.Progress)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := s.hooks.Wait(ctx, func(c webhooksink.Call) bool { return bytes.Contains(c.Body, []byte(rid)) })
		require.NoError(t, err, "callback after the outage")
		waitFor(t, 15*time.Second, "transactions ready once its broker connected", func() error {
			if code, body := call(t, http.MethodGet, s.api+"/readyz", nil); code != http.StatusOK {
				return fmt.Errorf("%d %s", code, body)
			}
			return nil
		})
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
		{"async not JSON", "POST", "/api/Export", "StartDate=2025-01-01", 400, "body is a JSON string, want a JSON object"},
		{"async callback to the cloud metadata service", "POST", "/api/Export", map[string]string{"StartDate": "2025-01-01", "EndDate": "2025-01-31", "CallbackUrl": "http://169.254.169.254/latest/meta-data/"}, 400, "is not on the allow-list"},
		{"async callback to a private network", "POST", "/api/Export", map[string]string{"StartDate": "2025-01-01", "EndDate": "2025-01-31", "CallbackUrl": "http://10.0.0.7:8080/admin"}, 400, "is not on the allow-list"},
		{"async callback to a host not allowed", "POST", "/api/Export", map[string]string{"StartDate": "2025-01-01", "EndDate": "2025-01-31", "CallbackUrl": "https://example.com/hook"}, 400, "is not on the allow-list"},
		{"sync year 0000", "GET", "/api/Export?StartDate=0000-01-01&EndDate=2025-01-31", nil, 400, "before 0001-01-01"},
		{"sync duplicate parameter", "GET", "/api/Export?StartDate=2025-01-01&StartDate=2025-02-01&EndDate=2025-03-01", nil, 400, `query parameter \"StartDate\" is given 2 times`},
		{"sync unknown parameter", "GET", "/api/Export?StartDate=2025-01-01&EndDate=2025-03-01&Format=xlsx", nil, 400, `unknown query parameter \"Format\"`},
		{"async unknown field style", "POST", "/api/Export", map[string]string{"StartDate": "2025-01-01", "EndDate": "2025-01-31", "Format": "xlsx"}, 400, `field \"Format\" is not allowed`},
		{"status unknown RID", "GET", "/api/Export/Status?RID=AAAAAAAAAAAAAAAAAAAAAAAAAA", nil, 404, "no export request with this RID"},
		{"status malformed RID", "GET", "/api/Export/Status?RID=NOPE", nil, 400, "an RID is 26 characters A-Z and 2-7"},
		{"status missing RID", "GET", "/api/Export/Status", nil, 400, "RID is required"},
		{"status RID twice", "GET", "/api/Export/Status?RID=" + pending + "&RID=" + pending, nil, 400, "given 2 times"},
		{"download unknown RID", "GET", "/api/Export/Download?RID=AAAAAAAAAAAAAAAAAAAAAAAAAA", nil, 404, "no export request"},
		{"download malformed RID", "GET", "/api/Export/Download?RID=../../etc/passwd", nil, 400, "an RID is 26 characters"},
		{"download not ready", "GET", "/api/Export/Download?RID=" + pending, nil, 409, "not completed"},
		{"wrong method", "DELETE", "/api/Export", nil, 405, "method DELETE is not allowed here; allowed: GET, HEAD, POST"},
		{"no such path", "GET", "/api/Exports", nil, 404, `no such resource: GET \"/api/Exports\"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, tc.method, s.api+tc.path, tc.body)
			assert.Equal(t, tc.want, code, "%s", body)
			assert.Contains(t, string(body), tc.msg)
			var p httpx.Problem
			require.NoError(t, jsonUnmarshal(body, &p), "every error is a problem document: %s", body)
			assert.Equal(t, tc.want, p.Status)
			assert.Equal(t, http.StatusText(tc.want), p.Title)
		})
	}
	// Nothing the client sent is echoed beyond a short prefix (a 500 KB
	// RID got a 500 KB 404).
	for _, path := range []string{
		"/api/Export/Status?RID=" + strings.Repeat("A", 500_000),
		"/api/Export?StartDate=" + strings.Repeat("9", 500_000) + "&EndDate=2025-01-01",
		"/api/Export?" + strings.Repeat("x", 500_000) + "=1",
		"/api/" + strings.Repeat("y", 500_000),
	} {
		code, body := call(t, http.MethodGet, s.api+path, nil)
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound}, code, "%.80s", body)
		assert.Less(t, len(body), 1000, "%.80s: answered %d bytes", path, len(body))
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
