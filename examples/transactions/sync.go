package transactions

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"syscall"

	"github.com/switchyard-go/switchyard/examples/internal/httpx"
)

// exportSync streams the CSV of the range as the response: rows go from the
// database cursor through encoding/csv to the client as they are read. An
// error after the first byte can no longer change the status, so the
// response is aborted and the client sees a truncated transfer, not a
// complete-looking file.
func (s *api) exportSync(w http.ResponseWriter, r *http.Request) {
	q, err := httpx.Query(r, "StartDate", "EndDate")
	if err != nil {
		httpx.WriteRequestError(w, err)
		return
	}
	start, end := q.Get("StartDate"), q.Get("EndDate")
	from, to, err := parseRange(start, end)
	if err != nil {
		httpx.WriteRequestError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="transactions_%s_%s.csv"`, start, end))
	rows, err := s.Store.WriteCSV(r.Context(), w, from, to, 0, nil)
	if err != nil {
		level := slog.LevelError
		if r.Context().Err() != nil || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			level = slog.LevelInfo // the client went away: nothing wrong here
		}
		s.Logger.Log(r.Context(), level, "synchronous export aborted", "start", start, "end", end, "rows", rows, "err", err)
		panic(http.ErrAbortHandler)
	}
	s.Logger.Info("synchronous export served", "start", start, "end", end, "rows", rows)
}
