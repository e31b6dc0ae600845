package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/transactions"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/pubsub"
)

// TestExportWorkerKilled: exports left running by a worker that was killed
// (its claim still in the database, its partial file on disk) do not wait
// for a long stale-after: the same worker, restarted, takes its own back at
// once; another's is handed on by the transactions service's sweep once
// the dead worker's lease (seconds, renewed by heartbeats) expired. Both
// complete, and the partial files are gone.
func TestExportWorkerKilled(t *testing.T) {
	e := newEnv(t, "mem://e2e-"+pubsub.NewID()[:12])
	var own, other string
	var partials []string
	s := startExportStack(t, e, exportConfig{before: func(store *txstore.Store, files *storage.Bucket) {
		ctx := context.Background()
		// A previous process of exporter-1 claimed "own" for an hour, and
		// a worker that is gone claimed "other" with a lease that ends in
		// one second; both left a temporary file behind.
		for _, c := range []struct {
			rid    *string
			worker string
			lease  time.Duration
		}{{&own, "exporter-1", time.Hour}, {&other, "exporter-9", time.Second}} {
			*c.rid = rand.Text()
			require.NoError(t, store.CreateExport(ctx, txstore.Export{RID: *c.rid, StartDate: "2025-02-01", EndDate: "2025-02-28"}))
			ok, err := store.Claim(ctx, *c.rid, c.worker, c.worker+"/killed", c.lease)
			require.NoError(t, err)
			require.True(t, ok)
			p := filepath.Join(files.Dir(), "exports", *c.rid+".csv.1a2b3c.tmp")
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			require.NoError(t, os.WriteFile(p, []byte("half a file"), 0o644))
			partials = append(partials, p)
		}
	}})
	s.startExporter(t, e, "exporter-1")
	// Its claim lasts an hour: completing it now means the restarted worker
	// took it back.
	st := s.waitStatus(t, own, events.StatusCompleted, 20*time.Second)
	assert.Equal(t, int64(len(s.wantCSV(t, "2025-02-01", "2025-02-28"))-1), st.Progress)
	s.waitStatus(t, other, events.StatusCompleted, 20*time.Second)
	row, err := s.store.Export(context.Background(), other)
	require.NoError(t, err)
	assert.Equal(t, "exporter-1", row.Worker, "handed on after the dead worker's lease expired")
	for _, p := range partials {
		_, err := os.Stat(p)
		assert.ErrorIs(t, err, os.ErrNotExist, "partial file %s removed", filepath.Base(p))
	}
}

// TestExportIdempotencyKey: the same Idempotency-Key and body return the
// same RID (one export, one event); the same key with another body is 422.
func TestExportIdempotencyKey(t *testing.T) {
	e := newEnv(t, "mem://e2e-"+pubsub.NewID()[:12])
	s := startExportStack(t, e, exportConfig{exporters: 1})
	post := func(key string, body transactions.ExportRequest) (*http.Response, string) {
		t.Helper()
		b, err := jsonMarshal(body)
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodPost, s.api+"/api/Export", bytes.NewReader(b))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var acc transactions.Accepted
		_ = jsonDecode(resp, &acc)
		return resp, acc.RID
	}
	body := transactions.ExportRequest{StartDate: "2025-03-01", EndDate: "2025-03-31"}
	r1, rid1 := post("order-42", body)
	require.Equal(t, http.StatusAccepted, r1.StatusCode)
	r2, rid2 := post("order-42", body)
	require.Equal(t, http.StatusAccepted, r2.StatusCode)
	assert.Equal(t, rid1, rid2, "the same key and body: the same RID")
	assert.Equal(t, "true", r2.Header.Get("Idempotent-Replayed"))
	assert.Empty(t, r1.Header.Get("Idempotent-Replayed"))

	other := body
	other.EndDate = "2025-04-30"
	r3, _ := post("order-42", other)
	assert.Equal(t, http.StatusUnprocessableEntity, r3.StatusCode, "the same key with another body")
	r4, rid4 := post("", body)
	require.Equal(t, http.StatusAccepted, r4.StatusCode)
	assert.NotEqual(t, rid1, rid4, "no key: a new request")
	r5, _ := post(string(bytes.Repeat([]byte("k"), 300)), body)
	assert.Equal(t, http.StatusBadRequest, r5.StatusCode)

	s.waitStatus(t, rid1, events.StatusCompleted, 10*time.Second)
	var n int
	require.NoError(t, s.store.DB().QueryRow(`SELECT COUNT(*) FROM export_requests WHERE start_date = '2025-03-01'`).Scan(&n))
	assert.Equal(t, 2, n, "one export for the key, one without")
}
