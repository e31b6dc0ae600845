package events

import "time"

// Export statuses, as the transactions API reports them.
const (
	StatusPending   = "pending"
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// ExportRequested asks an exporter to build the CSV of the transactions
// between StartDate and EndDate (inclusive, YYYY-MM-DD). It is published on
// export.requested keyed and identified by RID; the request row in the
// database is the source of truth, the event only a wake-up call, so
// republishing it is harmless.
type ExportRequested struct {
	RID         string    `json:"rid"`
	StartDate   string    `json:"start_date"`
	EndDate     string    `json:"end_date"`
	RequestedAt time.Time `json:"requested_at"`
}

// ExportFinished reports the end of an export, on export.completed or
// export.failed. It carries what the notifier needs to call the requester's
// callback without asking the database.
type ExportFinished struct {
	RID         string    `json:"rid"`
	Status      string    `json:"status"`
	Rows        int64     `json:"rows"`
	URL         string    `json:"url,omitempty"`
	Error       string    `json:"error,omitempty"`
	CallbackURL string    `json:"callback_url,omitempty"`
	FinishedAt  time.Time `json:"finished_at"`
}

// ExportStatus is the status of an export request as the transactions API
// answers GET /api/Export/Status and as the notifier posts it to the
// request's CallbackUrl. Progress is the number of rows written so far; Url,
// set once the export completed, downloads the CSV through the transactions
// service.
type ExportStatus struct {
	RID      string `json:"RID"`
	Status   string `json:"Status"`
	Progress int64  `json:"Progress"`
	URL      string `json:"Url,omitempty"`
	Error    string `json:"Error,omitempty"`
}
