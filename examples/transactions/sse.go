package transactions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/examples/txstore"
)

// extraRoutes adds the routes of the gRPC-era additions: the export's live
// status as Server-Sent Events, and the console.
func (s *api) extraRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/Export/Events", s.statusEvents)
	if s.Console != nil {
		mux.Handle("/console/", s.Console)
		mux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusFound))
	}
}

// sseHeartbeat is how often an idle event stream gets a comment line, so
// that proxies keep it open.
const sseHeartbeat = 15 * time.Second

// statusEvents streams the export's status as Server-Sent Events: a
// "status" event (data: the JSON of GET /api/Export/Status) now and at each
// change the exporters report through the broker, the last one with status
// completed or failed, after which the stream ends. A browser's EventSource
// must close itself on the final status (it would reconnect otherwise, and
// get the final status again).
func (s *api) statusEvents(w http.ResponseWriter, r *http.Request) {
	if s.watch == nil {
		httpx.WriteError(w, http.StatusNotImplemented, "live status needs a broker subscription; poll GET /api/Export/Status")
		return
	}
	e, ok := s.lookup(w, r)
	if !ok {
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	_ = rc.Flush()

	ctx := r.Context()
	err := s.watch.follow(ctx, e.RID, func() (liveStatus, error) {
		return s.liveStatus(ctx, e)
	}, func(st liveStatus) error {
		b, err := json.Marshal(st)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: status\ndata: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	}, sseHeartbeat, func() error {
		if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
			return err
		}
		return rc.Flush()
	})
	if err != nil && ctx.Err() == nil && !errors.Is(err, errStopping) {
		s.Logger.Warn("status event stream ended", "rid", e.RID, "err", err)
	}
}

// storedStatus is the status of rid as the database holds it, as GET
// /api/Export/Status answers it.
func (s *api) storedStatus(ctx context.Context, rid string) (events.ExportStatus, error) {
	e, err := s.Store.Export(ctx, rid)
	if err != nil {
		return events.ExportStatus{}, err
	}
	st := events.ExportStatus{RID: e.RID, Status: e.Status, Progress: e.Progress, Error: e.Error}
	if e.Status == events.StatusCompleted {
		st.URL = s.resultURL(ctx, e)
	}
	return st, nil
}

// liveStatus is storedStatus of e, read again, with the rows its range
// holds.
func (s *api) liveStatus(ctx context.Context, e txstore.Export) (liveStatus, error) {
	st, err := s.storedStatus(ctx, e.RID)
	if err != nil {
		return liveStatus{}, err
	}
	from, to, err := txstore.ParseDateRange(e.StartDate, e.EndDate)
	if err != nil {
		return liveStatus{ExportStatus: st}, nil
	}
	total, err := s.Store.CountTransactionsBetween(ctx, from, to)
	if err != nil {
		return liveStatus{}, err
	}
	return liveStatus{ExportStatus: st, Total: total}, nil
}
