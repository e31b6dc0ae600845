package transactions

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/switchyard-go/switchyard/examples/events"
)

func st(status string, progress, total int64) liveStatus {
	return liveStatus{ExportStatus: events.ExportStatus{RID: "R", Status: status, Progress: progress}, Total: total}
}

// TestWatchUpdate: a watch's status only moves forward, whatever order the
// events come in: progress never goes back, a final status is never
// replaced, the total (known only from the stored status) is kept.
func TestWatchUpdate(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []liveStatus
		want liveStatus
	}{
		{"in order", []liveStatus{st("pending", 0, 50), st("running", 0, 0), st("running", 20, 0), st("completed", 50, 0)}, st("completed", 50, 50)},
		{"late progress after completion", []liveStatus{st("running", 10, 50), st("completed", 50, 0), st("running", 40, 0)}, st("completed", 50, 50)},
		{"progress out of order", []liveStatus{st("running", 30, 0), st("running", 20, 0)}, st("running", 30, 0)},
		{"stored status after an event", []liveStatus{st("running", 30, 0), st("running", 10, 77)}, st("running", 30, 77)},
		{"stored pending after running", []liveStatus{st("running", 30, 0), st("pending", 0, 77)}, st("running", 30, 77)},
		{"final before stored", []liveStatus{st("failed", 5, 0), st("running", 5, 60)}, st("failed", 5, 60)},
		{"failed then completed", []liveStatus{st("failed", 5, 0), st("completed", 60, 0)}, st("failed", 5, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := &watch{changed: make(chan struct{}, 1)}
			for _, s := range tc.in {
				x.update(s)
			}
			assert.Equal(t, tc.want, x.current())
		})
	}
	x := &watch{changed: make(chan struct{}, 1)}
	x.update(st("running", 10, 0))
	<-x.changed
	x.update(st("running", 5, 0))
	select {
	case <-x.changed:
		t.Error("a status that changed nothing woke the watch")
	default:
	}
}
