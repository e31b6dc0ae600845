package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/examples/proto/exportpb"
	"github.com/switchyard-go/switchyard/examples/transactions"
	"github.com/switchyard-go/switchyard/internal/testnet"
	"github.com/switchyard-go/switchyard/pubsub"
)

// readChunks reads a CsvChunk stream to its end and returns the bytes and
// the rows count of each chunk.
func readChunks(t *testing.T, recv func() (*exportpb.CsvChunk, error)) ([]byte, []int64) {
	t.Helper()
	var data []byte
	var rows []int64
	for {
		c, err := recv()
		if errors.Is(err, io.EOF) {
			return data, rows
		}
		require.NoError(t, err)
		data = append(data, c.GetData()...)
		rows = append(rows, c.GetRows())
	}
}

// TestGRPCExport: over gRPC, the synchronous Export streams the database's
// rows in chunks; StartExport is the same request as POST /api/Export (an
// exporter completes it); WatchExport pushes its progress as the exporter
// reports it through the broker, ending with completed; Download returns the
// file; and GET /api/Export/Events pushes the same statuses as Server-Sent
// Events for an export requested over HTTP.
func TestGRPCExport(t *testing.T) {
	forMemAndAMQP(t, func(t *testing.T, e *env) {
		g := newGate()
		t.Cleanup(g.open)
		s := startGRPCStack(t, e, grpcConfig{exporters: 1, workerFiles: g.wrap}, nil)
		ctx, cancel := context.WithTimeout(as(context.Background(), "ada"), 30*time.Second)
		defer cancel()
		start, end := "2025-01-01", "2025-06-30"
		want := s.wantCSV(t, start, end)

		// Synchronous, streamed.
		stream, err := s.client.Export(ctx, &exportpb.ExportRequest{StartDate: start, EndDate: end})
		require.NoError(t, err)
		data, rows := readChunks(t, stream.Recv)
		assert.Equal(t, want, parseCSV(t, data))
		require.Greater(t, len(rows), 1, "%d bytes come in several chunks", len(data))
		assert.IsNonDecreasing(t, rows)
		assert.Equal(t, int64(len(want)-1), rows[len(rows)-1], "the last chunk counts every row")

		// Asynchronous: ticket, live status, download.
		ticket, err := s.client.StartExport(ctx, &exportpb.ExportRequest{StartDate: start, EndDate: end})
		require.NoError(t, err)
		require.Len(t, ticket.GetRid(), 26)
		watch, err := s.client.WatchExport(ctx, ticket)
		require.NoError(t, err)
		first, err := watch.Recv()
		require.NoError(t, err)
		seen := []*exportpb.ExportStatus{first}
		g.open() // the exporter writes once the watch is on
		for {
			st, err := watch.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			seen = append(seen, st)
		}
		require.NotEmpty(t, seen)
		last := seen[len(seen)-1]
		assert.Equal(t, exportpb.State_STATE_COMPLETED, last.GetState(), "the stream ends with the final status: %v", seen)
		assert.Equal(t, int64(len(want)-1), last.GetProgress())
		assert.Equal(t, int64(len(want)-1), last.GetTotal(), "total counted when the watch started: %v", seen)
		assert.Contains(t, last.GetDownloadUrl(), "/api/Export/Download?RID="+ticket.GetRid())
		var running []int64
		for _, st := range seen[:len(seen)-1] {
			assert.Contains(t, []exportpb.State{exportpb.State_STATE_PENDING, exportpb.State_STATE_RUNNING}, st.GetState())
			if st.GetState() == exportpb.State_STATE_RUNNING {
				running = append(running, st.GetProgress())
			}
		}
		assert.IsIncreasing(t, running, "progress only goes forward")
		var moved int
		for _, n := range running {
			if n > 0 {
				moved++
			}
		}
		assert.Positive(t, moved, "the exporter's progress events were pushed (ProgressEvery 100, %d rows): %v", len(want)-1, seen)
		got, err := s.client.GetExportStatus(ctx, ticket)
		require.NoError(t, err)
		assert.Equal(t, exportpb.State_STATE_COMPLETED, got.GetState())
		assert.Equal(t, s.status(t, ticket.GetRid()).Progress, got.GetProgress(), "gRPC and HTTP tell the same status")
		dl, err := s.client.Download(ctx, ticket)
		require.NoError(t, err)
		file, _ := readChunks(t, dl.Recv)
		assert.Equal(t, data, file, "the async file is byte for byte the sync stream")

		// HTTP: POST /api/Export as ada, then its status as Server-Sent Events
		// (the gate is open: the stream may start at any status).
		rid := requestAs(t, s.api, "ada", "2025-03-01", "2025-03-31")
		evs := readSSE(t, s.api+"/api/Export/Events?RID="+rid)
		require.NotEmpty(t, evs)
		final := evs[len(evs)-1]
		assert.Equal(t, events.StatusCompleted, final.Status, "%v", evs)
		assert.Equal(t, int64(len(s.wantCSV(t, "2025-03-01", "2025-03-31"))-1), final.Progress)
		assert.Equal(t, final.Progress, final.Total)
		assert.Contains(t, final.URL, "/api/Export/Download?RID="+rid)
	})
}

// sseStatus is one status event of GET /api/Export/Events.
type sseStatus struct {
	events.ExportStatus
	Total int64
}

// readSSE reads an event stream to its end (the server ends it after the
// final status) and returns its status events.
func readSSE(t *testing.T, url string) []sseStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	var out []sseStatus
	sc := bufio.NewScanner(resp.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			require.Equal(t, "status", event)
			var st sseStatus
			require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &st))
			out = append(out, st)
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// requestAs posts an async export as user and returns its RID.
func requestAs(t *testing.T, api, user, start, end string) string {
	t.Helper()
	code, body := callAs(t, user, http.MethodPost, api+"/api/Export", transactions.ExportRequest{StartDate: start, EndDate: end})
	require.Equal(t, http.StatusAccepted, code, "%s", body)
	var acc transactions.Accepted
	require.NoError(t, json.Unmarshal(body, &acc))
	return acc.RID
}

// callAs is call with the X-User header (none when user is empty).
func callAs(t *testing.T, user, method, url string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.Header.Set(transactions.UserHeader, user)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// errorInfo returns the ErrorInfo detail of err's status.
func errorInfo(t *testing.T, err error) *errdetails.ErrorInfo {
	t.Helper()
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei
		}
	}
	t.Fatalf("no ErrorInfo in %v", err)
	return nil
}

// TestGRPCErrors: the gRPC API's errors carry their codes and details, and
// the auth check answers the same over HTTP: no user, a user who may not
// export, bad fields, unknown tickets, a download before completion, a
// watch past its deadline. On mem:// and RabbitMQ.
func TestGRPCErrors(t *testing.T) {
	forMemAndAMQP(t, func(t *testing.T, e *env) {
		s := startGRPCStack(t, e, grpcConfig{}, nil) // no exporter: requests stay pending
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ada := as(ctx, "ada")
		good := &exportpb.ExportRequest{StartDate: "2025-01-01", EndDate: "2025-01-31"}

		// Who may export.
		_, err := s.client.StartExport(ctx, good)
		assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
		assert.Equal(t, "NO_USER", errorInfo(t, err).GetReason())
		_, err = s.client.StartExport(as(ctx, "bob"), good)
		assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		ei := errorInfo(t, err)
		assert.Equal(t, "EXPORT_DENIED", ei.GetReason())
		assert.Equal(t, "bob", ei.GetMetadata()["user"])
		assert.Equal(t, "no rule of demo-policy.txt allows bob to export transactions", ei.GetMetadata()["reason"])
		stream, err := s.client.Export(as(ctx, "bob"), good)
		require.NoError(t, err)
		_, err = stream.Recv()
		assert.Equal(t, codes.PermissionDenied, status.Code(err), "the sync export is checked too: %v", err)
		code, body := callAs(t, "bob", http.MethodGet, s.api+"/api/Export?StartDate=2025-01-01&EndDate=2025-01-31", nil)
		assert.Equal(t, http.StatusForbidden, code)
		var ae transactions.AuthError
		require.NoError(t, json.Unmarshal(body, &ae))
		assert.Equal(t, transactions.AuthError{Problem: httpx.Problem{Type: "about:blank", Title: "Forbidden", Status: http.StatusForbidden,
			Detail: "bob may not export transactions: no rule of demo-policy.txt allows bob to export transactions"},
			User: "bob", Reason: "no rule of demo-policy.txt allows bob to export transactions"}, ae)
		code, body = callAs(t, "bob", http.MethodPost, s.api+"/api/Export", transactions.ExportRequest{StartDate: "2025-01-01", EndDate: "2025-01-31"})
		assert.Equal(t, http.StatusForbidden, code, "%s", body)
		code, body = callAs(t, "", http.MethodPost, s.api+"/api/Export", transactions.ExportRequest{StartDate: "2025-01-01", EndDate: "2025-01-31"})
		assert.Equal(t, http.StatusUnauthorized, code, "%s", body)
		assert.Contains(t, string(body), "X-User header")
		code, body = callAs(t, "carol", http.MethodGet, s.api+"/api/Export?StartDate=2025-01-01&EndDate=2025-01-01", nil)
		assert.Equal(t, http.StatusOK, code, "carol may do anything: %s", body)
		n, err := s.exportCount()
		require.NoError(t, err)
		assert.Zero(t, n, "no refused request was stored")

		// Fields.
		for _, tc := range []struct {
			req   *exportpb.ExportRequest
			field string
			msg   string
		}{
			{&exportpb.ExportRequest{EndDate: "2025-01-31"}, "start_date", "start_date: is required (YYYY-MM-DD)"},
			{&exportpb.ExportRequest{StartDate: "2025-01-01", EndDate: "2025-02-30"}, "end_date", `end_date: "2025-02-30" is not a date of the form YYYY-MM-DD`},
			{&exportpb.ExportRequest{StartDate: "2025-03-01", EndDate: "2025-01-31"}, "start_date", "start_date: 2025-03-01 is after end_date 2025-01-31"},
			{&exportpb.ExportRequest{StartDate: "2025-01-01", EndDate: "2025-01-31", CallbackUrl: "ftp://x"}, "callback_url", `callback_url: not an absolute http(s) URL`},
		} {
			_, err := s.client.StartExport(ada, tc.req)
			st := status.Convert(err)
			assert.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
			assert.Equal(t, tc.msg, st.Message())
			require.Len(t, st.Details(), 1)
			br := st.Details()[0].(*errdetails.BadRequest)
			assert.Equal(t, tc.field, br.GetFieldViolations()[0].GetField())
		}

		// Tickets.
		_, err = s.client.GetExportStatus(ctx, &exportpb.ExportTicket{})
		assert.Equal(t, codes.InvalidArgument, status.Code(err))
		_, err = s.client.GetExportStatus(ctx, &exportpb.ExportTicket{Rid: "NOPE"})
		st := status.Convert(err)
		assert.Equal(t, codes.NotFound, st.Code())
		require.Len(t, st.Details(), 1)
		assert.Equal(t, "NOPE", st.Details()[0].(*errdetails.ResourceInfo).GetResourceName())
		ticket, err := s.client.StartExport(ada, good)
		require.NoError(t, err)
		got, err := s.client.GetExportStatus(ctx, ticket)
		require.NoError(t, err)
		assert.Equal(t, exportpb.State_STATE_PENDING, got.GetState())
		dl, err := s.client.Download(ctx, ticket)
		require.NoError(t, err)
		_, err = dl.Recv()
		st = status.Convert(err)
		assert.Equal(t, codes.FailedPrecondition, st.Code(), "%v", err)
		assert.Equal(t, "export "+ticket.GetRid()+" is pending, not completed", st.Message())
		require.Len(t, st.Details(), 1)
		assert.Equal(t, "export/"+ticket.GetRid(), st.Details()[0].(*errdetails.PreconditionFailure).GetViolations()[0].GetSubject())

		// A watch of an export that makes no progress ends at its deadline.
		wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer wcancel()
		watch, err := s.client.WatchExport(wctx, ticket)
		require.NoError(t, err)
		first, err := watch.Recv()
		require.NoError(t, err)
		assert.Equal(t, exportpb.State_STATE_PENDING, first.GetState(), "the stored status comes first")
		_, err = watch.Recv()
		assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	})
}

// exportCount returns the number of export requests stored.
func (s grpcStack) exportCount() (int, error) {
	var n int
	err := s.store.DB().QueryRow(`SELECT COUNT(*) FROM export_requests`).Scan(&n)
	return n, err
}

// TestAuthDown: with the auth service down, or not answering within the
// deadline, every export is refused (fail closed), over HTTP with 503 and a
// message saying so, over gRPC with UNAVAILABLE; nothing is stored. On
// mem:// and RabbitMQ.
func TestAuthDown(t *testing.T) {
	forMemAndAMQP(t, func(t *testing.T, e *env) {
		// A listener that accepts connections and never answers: the check
		// waits out its deadline.
		silent, err := testnet.NewSilent()
		require.NoError(t, err)
		t.Cleanup(func() { _ = silent.Close() })

		for _, tc := range []struct {
			name string
			cfg  grpcConfig
			stop bool
		}{
			{"stopped", grpcConfig{}, true},
			{"silent", grpcConfig{authAddr: silent.Addr(), authTimeout: 300 * time.Millisecond}, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := startGRPCStack(t, e, tc.cfg, nil)
				if tc.stop {
					code, body := callAs(t, "ada", http.MethodGet, s.api+"/api/Export?StartDate=2025-01-01&EndDate=2025-01-01", nil)
					require.Equal(t, http.StatusOK, code, "auth up: %s", body)
					s.stopAuth()
				}
				began := time.Now()
				code, body := callAs(t, "ada", http.MethodPost, s.api+"/api/Export", transactions.ExportRequest{StartDate: "2025-01-01", EndDate: "2025-01-31"})
				took := time.Since(began)
				assert.Equal(t, http.StatusServiceUnavailable, code, "%s", body)
				var ae transactions.AuthError
				require.NoError(t, json.Unmarshal(body, &ae))
				assert.Contains(t, ae.Detail, "the auth service did not answer within")
				assert.Contains(t, ae.Detail, "exports are refused until it does (fail closed)")
				assert.Less(t, took, 5*time.Second, "answered within the auth deadline")
				code, _ = callAs(t, "ada", http.MethodGet, s.api+"/api/Export?StartDate=2025-01-01&EndDate=2025-01-31", nil)
				assert.Equal(t, http.StatusServiceUnavailable, code)

				ctx, cancel := context.WithTimeout(as(context.Background(), "ada"), 10*time.Second)
				defer cancel()
				_, err := s.client.StartExport(ctx, &exportpb.ExportRequest{StartDate: "2025-01-01", EndDate: "2025-01-31"})
				assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
				assert.Equal(t, "AUTH_UNAVAILABLE", errorInfo(t, err).GetReason())
				n, err := s.exportCount()
				require.NoError(t, err)
				assert.Zero(t, n, "nothing was stored")
			})
		}
	})
}

// logRecorder is a slog.Handler that keeps the records with a message.
type logRecorder struct {
	msg string
	mu  sync.Mutex
	got []map[string]any
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Message != h.msg {
		return nil
	}
	m := map[string]any{}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	h.mu.Lock()
	h.got = append(h.got, m)
	h.mu.Unlock()
	return nil
}

func (h *logRecorder) records() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.got...)
}

// TestGRPCExportCancel: a client that cancels Export after the first chunk
// stops the server's database cursor: the handler returns having read far
// fewer rows than the range holds.
func TestGRPCExportCancel(t *testing.T) {
	e := newEnv(t, "mem://e2e-"+pubsub.NewID()[:12])
	rec := &logRecorder{msg: "gRPC export stopped"}
	const rows = 12000
	s := startGRPCStack(t, e, grpcConfig{seed: rows}, func(d *transactions.Deps) { d.Logger = slog.New(rec) })
	ctx, cancel := context.WithCancel(as(context.Background(), "ada"))
	stream, err := s.client.Export(ctx, &exportpb.ExportRequest{StartDate: "2025-01-01", EndDate: "2025-12-31"},
		grpc.MaxCallRecvMsgSize(1<<20))
	require.NoError(t, err)
	c, err := stream.Recv()
	require.NoError(t, err)
	require.Positive(t, c.GetRows())
	cancel()
	waitFor(t, 10*time.Second, "the server to stop the export", func() error {
		if len(rec.records()) == 0 {
			return errors.New("not stopped yet")
		}
		return nil
	})
	r := rec.records()[0]
	t.Logf("the server stopped after %v of %d rows: %v", r["rows"], rows, r["err"])
	assert.Less(t, r["rows"].(int64), int64(rows/2), "the cursor stopped early: %v", r)
	assert.ErrorIs(t, r["err"].(error), context.Canceled)
}
