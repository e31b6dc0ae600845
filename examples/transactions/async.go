package transactions

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

// parseRange is txstore.ParseDateRange with 400 errors.
func parseRange(start, end string) (from, to time.Time, err error) {
	from, to, err = txstore.ParseDateRange(start, end)
	if err != nil {
		return from, to, httpx.BadRequest("%v", err)
	}
	return from, to, nil
}

// newRID returns an unguessable request id: 128 bits from crypto/rand,
// base32-encoded.
func newRID() string { return rand.Text() }

// requestExport stores the request as pending, then tries to publish
// export.requested; whether or not the broker takes it now, the request is
// safe in the database and the sweeper will publish it if this did not.
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
		if u, err := url.Parse(req.CallbackURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("CallbackUrl %q is not an absolute http(s) URL", req.CallbackURL))
			return
		}
	}
	rid, err := s.submit(r.Context(), req, s.baseURL(r))
	if err != nil {
		httpx.WriteError(w, http.StatusInternalServerError, "the request could not be stored; try again")
		return
	}
	w.Header().Set("Location", "/api/Export/Status?RID="+rid)
	httpx.WriteJSON(w, http.StatusAccepted, Accepted{RID: rid})
}

// publish publishes export.requested for e, identified by its RID, and
// records that the broker accepted it.
func (s *api) publish(ctx context.Context, e txstore.Export) error {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.PublishTimeout)
	defer cancel()
	ev := events.ExportRequested{RID: e.RID, StartDate: e.StartDate, EndDate: e.EndDate, RequestedAt: e.CreatedAt}
	if ev.RequestedAt.IsZero() {
		ev.RequestedAt = time.Now().UTC()
	}
	if err := s.topic.Publish(pctx, s.Publisher, ev, pubsub.WithKey(e.RID), pubsub.WithID(e.RID)); err != nil {
		return err
	}
	s.Logger.Info("export.requested published", "rid", e.RID, "start", e.StartDate, "end", e.EndDate)
	return s.Store.MarkPublished(pctx, e.RID)
}

// lookup returns the export named by the RID query parameter, having
// answered the request itself (400 or 404) when it cannot.
func (s *api) lookup(w http.ResponseWriter, r *http.Request) (txstore.Export, bool) {
	rid := r.URL.Query().Get("RID")
	if rid == "" {
		httpx.WriteError(w, http.StatusBadRequest, "RID is required")
		return txstore.Export{}, false
	}
	e, err := s.Store.Export(r.Context(), rid)
	if errors.Is(err, txstore.ErrNotFound) {
		httpx.WriteError(w, http.StatusNotFound, fmt.Sprintf("no export request with RID %q", rid))
		return txstore.Export{}, false
	}
	if err != nil {
		s.Logger.Error("read export request", "rid", rid, "err", err)
		httpx.WriteError(w, http.StatusInternalServerError, "the request could not be read; try again")
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
		st.URL = s.baseURL(r) + "/api/Export/Download?RID=" + url.QueryEscape(e.RID)
	}
	httpx.WriteJSON(w, http.StatusOK, st)
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
		httpx.WriteError(w, http.StatusInternalServerError, "the file could not be read; try again")
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="transactions_%s_%s.csv"`, e.StartDate, e.EndDate))
	if _, err := io.Copy(w, f); err != nil {
		s.Logger.Warn("download interrupted", "rid", e.RID, "err", err)
	}
}
