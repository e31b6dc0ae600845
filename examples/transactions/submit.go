package transactions

import (
	"context"
	"net/url"

	"github.com/switchyard-go/switchyard/examples/txstore"
)

// submit stores a validated asynchronous export request as pending, then
// tries to publish export.requested; whether or not the broker takes it
// now, the request is safe in the database and the sweeper will publish it
// if this did not. base is the start of the download URL. Both APIs, HTTP
// (POST /api/Export) and gRPC (StartExport), submit through it. It returns
// the request's RID; its error means the request was not stored.
func (s *api) submit(ctx context.Context, req ExportRequest, base string) (string, error) {
	rid := newRID()
	e := txstore.Export{
		RID: rid, StartDate: req.StartDate, EndDate: req.EndDate, CallbackURL: req.CallbackURL,
		DownloadURL: base + "/api/Export/Download?RID=" + rid,
	}
	if err := s.Store.CreateExport(ctx, e); err != nil {
		s.Logger.Error("store export request", "err", err)
		return "", err
	}
	if err := s.publish(ctx, e); err != nil {
		s.Logger.Warn("export.requested not published now; the outbox sweeper will publish it", "rid", rid, "err", err)
	}
	return rid, nil
}

// validCallback reports whether a request's CallbackUrl is empty or an
// absolute http(s) URL.
func validCallback(raw string) bool {
	if raw == "" {
		return true
	}
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
