package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
)

// clientBuffer is how many reports wait for one page's stream.
const clientBuffer = 256

// heartbeat is how often an idle stream gets a comment line.
const heartbeat = 15 * time.Second

// live streams delivery reports as Server-Sent Events ("report" events,
// data: an events.DeliveryReport): the recent ones, then each as it comes.
// A page that falls behind has its stream ended; its EventSource
// reconnects and gets the recent ones again (pages deduplicate).
func (c *Console) live(w http.ResponseWriter, r *http.Request) {
	if c.sub == nil {
		httpx.WriteError(w, http.StatusNotImplemented, "the console has no broker subscription: no live events")
		return
	}
	ch := make(chan events.DeliveryReport, clientBuffer)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		httpx.WriteError(w, http.StatusServiceUnavailable, "the console is stopping")
		return
	}
	recent := append([]events.DeliveryReport(nil), c.recent...)
	c.clients[ch] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if _, ok := c.clients[ch]; ok {
			delete(c.clients, ch)
			close(ch)
		}
		c.mu.Unlock()
	}()

	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 1000\n\n")
	send := func(rep events.DeliveryReport) error {
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "event: report\ndata: %s\n\n", b)
		return err
	}
	for _, rep := range recent {
		if send(rep) != nil {
			return
		}
	}
	if rc.Flush() != nil {
		return
	}
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		select {
		case rep, ok := <-ch:
			if !ok {
				return
			}
			if send(rep) != nil || rc.Flush() != nil {
				return
			}
		case <-t.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-c.done:
			return
		}
	}
}
