package transactions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/pubsub"
)

// ExportRequest is the body of POST /api/Export.
type ExportRequest struct {
	StartDate   string `json:"StartDate"`
	EndDate     string `json:"EndDate"`
	CallbackURL string `json:"CallbackUrl,omitempty"`
}

// Accepted is the 202 answer to POST /api/Export.
type Accepted struct {
	RID string `json:"RID"`
}

// Idempotency keys: POST /api/Export with the header HeaderIdempotencyKey
// answers a repeat of the same key and body, within IdempotencyWindow, with
// the RID of the first request (and HeaderIdempotentReplayed: true),
// without a second export; the same key with another body is 422.
const (
	HeaderIdempotencyKey     = "Idempotency-Key"
	HeaderIdempotentReplayed = "Idempotent-Replayed"
	IdempotencyWindow        = 24 * time.Hour
	// MaxIdempotencyKeyBytes is the longest key accepted.
	MaxIdempotencyKeyBytes = 255
)

// parseRange is txstore.ParseDateRange with 400 errors.
func parseRange(start, end string) (from, to time.Time, err error) {
	from, to, err = txstore.ParseDateRange(start, end)
	if err != nil {
		return from, to, &httpx.RequestError{Status: http.StatusBadRequest, Err: err}
	}
	return from, to, nil
}

// newRID returns an unguessable request id: 128 bits from crypto/rand,
// base32-encoded (26 characters A-Z and 2-7).
func newRID() string { return rand.Text() }

// ridPattern is the form of every RID newRID makes.
var ridPattern = regexp.MustCompile(`^[A-Z2-7]{26}$`)

// requested is the export.requested event of a request.
func requested(rid, start, end string, at time.Time) events.ExportRequested {
	if at.IsZero() {
		at = time.Now()
	}
	return events.ExportRequested{RID: rid, StartDate: start, EndDate: end, RequestedAt: at.UTC()}
}

// requestExport stores the request as pending and its export.requested
// event in the outbox, in one database transaction, and answers 202 at
// once: the outbox relay publishes the event once the transaction
// committed, whether or not the broker is reachable now.
func (s *api) requestExport(w http.ResponseWriter, r *http.Request) {
	var req ExportRequest
	if err := httpx.DecodeJSON(w, r, s.MaxBodyBytes, &req); err != nil {
		httpx.WriteRequestError(w, err)
		return
	}
	if _, _, err := parseRange(req.StartDate, req.EndDate); err != nil {
		httpx.WriteRequestError(w, err)
		return
	}
	if req.CallbackURL != "" {
		if _, err := s.CallbackPolicy.CheckURL(req.CallbackURL); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, "CallbackUrl: "+err.Error())
			return
		}
	}
	key := r.Header.Get(HeaderIdempotencyKey)
	if len(r.Header.Values(HeaderIdempotencyKey)) > 1 || len(key) > MaxIdempotencyKeyBytes || !printable(key) {
		httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("%s: give one, of 1 to %d printable ASCII characters", HeaderIdempotencyKey, MaxIdempotencyKeyBytes))
		return
	}
	rid, replayed, err := s.store(r.Context(), req, key)
	var re *httpx.RequestError
	switch {
	case errors.As(err, &re):
		httpx.WriteRequestError(w, err)
		return
	case err != nil:
		s.Logger.Error("store export request", "err", err)
		httpx.WriteError(w, http.StatusServiceUnavailable, "the request could not be stored; try again")
		return
	}
	if replayed {
		w.Header().Set(HeaderIdempotentReplayed, "true")
	} else {
		s.Logger.Info("export requested", "rid", rid, "start", req.StartDate, "end", req.EndDate)
	}
	w.Header().Set("Location", "/api/Export/Status?RID="+rid)
	httpx.WriteJSON(w, http.StatusAccepted, Accepted{RID: rid})
}

// store stores req (under Idempotency-Key key, when not empty) with its
// event, and returns its RID; replayed is true when key already named the
// same request, whose RID it returns. A concurrent request with the same
// key is retried once, so that it finds the first.
func (s *api) store(ctx context.Context, req ExportRequest, key string) (rid string, replayed bool, err error) {
	for try := 0; ; try++ {
		rid, replayed, err = s.storeOnce(ctx, req, key)
		if !errors.Is(err, txstore.ErrDuplicateKey) || try > 0 {
			return rid, replayed, err
		}
	}
}

func (s *api) storeOnce(ctx context.Context, req ExportRequest, key string) (string, bool, error) {
	tx, err := s.Store.BeginTx(ctx)
	if err != nil {
		return "", false, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	hash := requestHash(req)
	if key != "" {
		prev, err := s.Store.ExportByIdempotencyKey(ctx, tx, key, time.Now().Add(-IdempotencyWindow))
		switch {
		case err == nil && prev.RequestHash == hash:
			return prev.RID, true, tx.Commit()
		case err == nil:
			return "", false, &httpx.RequestError{Status: http.StatusUnprocessableEntity,
				Err: fmt.Errorf("%s was used with another request body within %s; use a new key", HeaderIdempotencyKey, IdempotencyWindow)}
		case !errors.Is(err, txstore.ErrNotFound):
			return "", false, err
		}
	}
	rid := newRID()
	e := txstore.Export{
		RID: rid, StartDate: req.StartDate, EndDate: req.EndDate, CallbackURL: req.CallbackURL,
		DownloadURL: s.downloadURL(rid), IdempotencyKey: key, RequestHash: hash,
	}
	if err := s.Store.CreateExportTx(ctx, tx, e); err != nil {
		return "", false, err
	}
	ev := requested(rid, req.StartDate, req.EndDate, time.Now())
	if err := s.topic.Publish(ctx, s.outbox.Tx(tx), ev, pubsub.WithKey(rid), pubsub.WithID(rid)); err != nil {
		return "", false, err
	}
	return rid, false, tx.Commit()
}

// requestHash identifies a request's content under an idempotency key.
func requestHash(req ExportRequest) string {
	h := sha256.Sum256([]byte(req.StartDate + "\x00" + req.EndDate + "\x00" + req.CallbackURL))
	return hex.EncodeToString(h[:])
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// lookup returns the export named by the RID query parameter, having
// answered the request itself (400 or 404) when it cannot. The RID is
// never echoed.
func (s *api) lookup(w http.ResponseWriter, r *http.Request) (txstore.Export, bool) {
	q, err := httpx.Query(r, "RID")
	if err != nil {
		httpx.WriteRequestError(w, err)
		return txstore.Export{}, false
	}
	rid := q.Get("RID")
	switch {
	case rid == "":
		httpx.WriteError(w, http.StatusBadRequest, "RID is required")
		return txstore.Export{}, false
	case !ridPattern.MatchString(rid):
		httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("RID is %d bytes; an RID is 26 characters A-Z and 2-7", len(rid)))
		return txstore.Export{}, false
	}
	e, err := s.Store.Export(r.Context(), rid)
	if errors.Is(err, txstore.ErrNotFound) {
		httpx.WriteError(w, http.StatusNotFound, "no export request with this RID")
		return txstore.Export{}, false
	}
	if err != nil {
		s.Logger.Error("read export request", "rid", rid, "err", err)
		httpx.WriteError(w, http.StatusServiceUnavailable, "the request could not be read; try again")
		return txstore.Export{}, false
	}
	return e, true
}

func (s *api) status(w http.ResponseWriter, r *http.Request) {
	e, ok := s.lookup(w, r)
	if !ok {
		return
	}
	st := events.ExportStatus{RID: e.RID, Status: e.Status, Progress: e.Progress, Error: e.Error}
	if e.Status == events.StatusCompleted {
		st.URL = s.resultURL(r.Context(), e)
	}
	httpx.WriteJSON(w, http.StatusOK, st)
}

// resultURL is where a completed export is downloaded: a signed,
// time-limited URL to the object when the storage can sign one (the client
// then downloads from storage directly), else the download through the
// service.
func (s *api) resultURL(ctx context.Context, e txstore.Export) string {
	if signer, ok := s.Storage.(storage.Signer); ok {
		u, err := signer.SignedURL(ctx, e.ObjectKey, s.URLTTL)
		if err == nil {
			return u
		}
		if !errors.Is(err, storage.ErrCannotSign) {
			s.Logger.Warn("sign download URL; serving through the service", "rid", e.RID, "err", err)
		}
	}
	return s.downloadURL(e.RID)
}

// download streams a completed export's file from storage.
func (s *api) download(w http.ResponseWriter, r *http.Request) {
	e, ok := s.lookup(w, r)
	if !ok {
		return
	}
	if e.Status != events.StatusCompleted {
		httpx.WriteError(w, http.StatusConflict, fmt.Sprintf("export %s is %s, not completed", e.RID, e.Status))
		return
	}
	f, err := s.Storage.Open(r.Context(), e.ObjectKey)
	if errors.Is(err, storage.ErrNotFound) {
		httpx.WriteError(w, http.StatusGone, fmt.Sprintf("the file of export %s is no longer stored", e.RID))
		return
	}
	if err != nil {
		s.Logger.Error("open export file", "rid", e.RID, "err", err)
		httpx.WriteError(w, http.StatusServiceUnavailable, "the file could not be read; try again")
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="transactions_%s_%s.csv"`, e.StartDate, e.EndDate))
	if _, err := io.Copy(w, f); err != nil {
		s.Logger.Warn("download interrupted", "rid", e.RID, "err", err)
	}
}
