package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"

	"github.com/switchyard-go/switchyard/examples/internal/httpx"
)

// maxBody bounds the bodies the console forwards.
const maxBody = 64 << 10

// forward sends a request to url with body (nil for none) and copies the
// answer to w: status, content type and body. A service that does not
// answer is a 502 naming it.
func (c *Console) forward(w http.ResponseWriter, r *http.Request, method, url string, body []byte) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, url, rd)
	if err != nil {
		httpx.WriteError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.deps.Client.Do(req)
	if err != nil {
		httpx.WriteError(w, http.StatusBadGateway, fmt.Sprintf("%s %s: %v", method, url, err))
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, 16<<20))
}

// postActivity forwards the page's activity to the activity service.
func (c *Console) postActivity(w http.ResponseWriter, r *http.Request) {
	if c.deps.ActivityURL == "" {
		httpx.WriteError(w, http.StatusNotImplemented, "the console does not know the activity service")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	c.forward(w, r, http.MethodPost, c.deps.ActivityURL+"/api/activity", body)
}

// GroupLetters is one group's part of GET /console/api/deadletters.
type GroupLetters struct {
	Group string `json:"group"`
	// DeadLetters is the service's answer's "dead_letters".
	DeadLetters []json.RawMessage `json:"dead_letters"`
	// Error says why the service's list is missing.
	Error string `json:"error,omitempty"`
}

// deadLetters answers {"groups": [GroupLetters...]}, sorted by group,
// asking every service at once.
func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request) {
	out := make([]GroupLetters, 0, len(c.deps.DeadLetterAPIs))
	ch := make(chan GroupLetters)
	for g, base := range c.deps.DeadLetterAPIs {
		go func() { ch <- c.groupLetters(r.Context(), g, base) }()
	}
	for range c.deps.DeadLetterAPIs {
		out = append(out, <-ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	httpx.WriteJSON(w, http.StatusOK, struct {
		Groups []GroupLetters `json:"groups"`
	}{out})
}

func (c *Console) groupLetters(ctx context.Context, group, base string) GroupLetters {
	gl := GroupLetters{Group: group, DeadLetters: []json.RawMessage{}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/deadletters", nil)
	if err != nil {
		gl.Error = err.Error()
		return gl
	}
	resp, err := c.deps.Client.Do(req)
	if err != nil {
		gl.Error = err.Error()
		return gl
	}
	defer resp.Body.Close()
	var body struct {
		Group       string            `json:"group"`
		DeadLetters []json.RawMessage `json:"dead_letters"`
		Detail      string            `json:"detail"` // of an error's problem document
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&body); err != nil {
		gl.Error = fmt.Sprintf("%s: %v", resp.Status, err)
		return gl
	}
	if resp.StatusCode != http.StatusOK {
		gl.Error = fmt.Sprintf("%s: %s", resp.Status, body.Detail)
		return gl
	}
	if body.DeadLetters != nil {
		gl.DeadLetters = body.DeadLetters
	}
	return gl
}

// ReplayRequest is the body of POST /console/api/deadletters/replay.
type ReplayRequest struct {
	Group string   `json:"group"`
	Topic string   `json:"topic"`
	IDs   []string `json:"ids"`
}

// replay forwards {"topic","ids"} to the group's service's POST
// /api/deadletters/replay.
func (c *Console) replay(w http.ResponseWriter, r *http.Request) {
	var req ReplayRequest
	if err := httpx.DecodeJSON(w, r, maxBody, &req); err != nil {
		httpx.WriteRequestError(w, err)
		return
	}
	base, ok := c.deps.DeadLetterAPIs[req.Group]
	if !ok {
		httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("group %q: the console knows no service for it", req.Group))
		return
	}
	if len(req.IDs) == 0 {
		httpx.WriteError(w, http.StatusBadRequest, "ids: give the IDs of the dead letters to replay")
		return
	}
	body, _ := json.Marshal(map[string]any{"topic": req.Topic, "ids": req.IDs})
	c.forward(w, r, http.MethodPost, base+"/api/deadletters/replay", body)
}
