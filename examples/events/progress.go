package events

import (
	"time"

	"github.com/switchyard-go/switchyard/pubsub"
)

// ExportProgressTopic carries ExportProgress events, keyed by RID.
const ExportProgressTopic = "export.progress"

// ExportProgress reports that an exporter is working on an export: once
// when it claims the request (Status running, Rows 0), then after every
// batch of rows it wrote. It is published on export.progress, best effort:
// the database row stays the source of truth, and export.completed or
// export.failed end every export. The transactions service pushes these to
// the clients watching the export (gRPC WatchExport, Server-Sent Events).
type ExportProgress struct {
	RID    string    `json:"rid"`
	Status string    `json:"status"`
	Rows   int64     `json:"rows"`
	Worker string    `json:"worker"`
	At     time.Time `json:"at"`
}

// ExportProgress returns the typed export.progress topic of n.
func (n Namespace) ExportProgress() pubsub.Topic[ExportProgress] {
	return pubsub.NewTopic[ExportProgress](n.Topic(ExportProgressTopic))
}
