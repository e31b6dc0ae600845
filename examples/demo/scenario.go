package demo

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/webhooksink"
	"github.com/switchyard-go/switchyard/pubsub"
)

// expectation is one thing the scenario waits for.
type expectation struct {
	what  string
	check func(ctx context.Context) error
}

// runScenario drives the scripted flow against the running services (base
// URLs by name) and waits, until ctx ends, for every expected event.
func runScenario(ctx context.Context, out io.Writer, u map[string]string, sink *webhooksink.Sink) error {
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
	started := time.Now()
	user := "demo-" + pubsub.NewID()[:8]
	say("\nScenario: user %s", user)

	// 1. User activity: five events, and one that analytics' handler crashes on.
	script := []events.UserActivity{
		{UserID: user, Type: events.SignedUp},
		{UserID: user, Type: events.LoggedIn},
		{UserID: user, Type: events.ViewedPage, Attributes: map[string]string{"page": "/pricing"}},
		{UserID: user, Type: events.ViewedPage, Attributes: map[string]string{"page": "/checkout"}},
		{UserID: user, Type: events.Purchased, Attributes: map[string]string{"sku": "plan-pro"}},
	}
	crash := events.UserActivity{UserID: user, Type: events.ViewedPage, Attributes: map[string]string{events.SimulateFailureAttribute: events.GroupAnalytics}}
	for _, a := range script {
		if _, err := post(ctx, u["activity"]+"/api/activity", a); err != nil {
			return err
		}
	}
	crashID, err := post(ctx, u["activity"]+"/api/activity", crash)
	if err != nil {
		return err
	}
	say("→ POST /api/activity ×%d: events of %s, the last one set to crash analytics' handler (message %s; its retries and dead letter are logged on purpose)", len(script)+1, user, crashID["id"])

	// 2. An asynchronous export with a callback.
	acc, err := post(ctx, u["transactions"]+"/api/Export", map[string]string{
		"StartDate": "2025-01-01", "EndDate": "2025-03-31", "CallbackUrl": u["webhook-sink"] + "/hooks/export",
	})
	if err != nil {
		return err
	}
	rid := acc["RID"]
	say("→ POST /api/Export 2025-01-01..2025-03-31: 202, RID %s", rid)

	var status events.ExportStatus
	var statusMu sync.Mutex
	expectations := []expectation{
		{"audit recorded all 6 events of " + user, func(ctx context.Context) error {
			var r struct{ Count int }
			if err := get(ctx, u["audit"]+"/api/audit?user_id="+user, &r); err != nil {
				return err
			}
			return want(r.Count, len(script)+1, "events in audit")
		}},
		{"analytics counted the 5 good events of " + user, func(ctx context.Context) error {
			var r struct {
				ByUser map[string]map[string]int64 `json:"by_user"`
			}
			if err := get(ctx, u["analytics"]+"/api/stats?user_id="+user, &r); err != nil {
				return err
			}
			var n int64
			for _, c := range r.ByUser[user] {
				n += c
			}
			return want(int(n), len(script), "events counted")
		}},
		{"analytics retried the crashing event, then dead-lettered it", func(ctx context.Context) error {
			var r struct {
				DeadLetters []struct {
					ID       string `json:"id"`
					Attempts int    `json:"attempts"`
				} `json:"dead_letters"`
			}
			if err := get(ctx, u["analytics"]+"/api/deadletters", &r); err != nil {
				return err
			}
			for _, d := range r.DeadLetters {
				if d.ID == crashID["id"] {
					return nil
				}
			}
			return fmt.Errorf("message %s not among %d dead letters", crashID["id"], len(r.DeadLetters))
		}},
		{"notifier sent the welcome webhook for " + user, func(context.Context) error {
			for _, c := range sink.Calls() {
				if c.Path == "/hooks/welcome" && bytes.Contains(c.Body, []byte(`"user_id":"`+user+`"`)) {
					return nil
				}
			}
			return errors.New("no welcome webhook call yet")
		}},
		{"an exporter completed export " + rid, func(ctx context.Context) error {
			var st events.ExportStatus
			if err := get(ctx, u["transactions"]+"/api/Export/Status?RID="+url.QueryEscape(rid), &st); err != nil {
				return err
			}
			statusMu.Lock()
			status = st
			statusMu.Unlock()
			if st.Status != events.StatusCompleted {
				return fmt.Errorf("status %s, progress %d", st.Status, st.Progress)
			}
			return nil
		}},
		{"the download holds as many rows as the export reported", func(ctx context.Context) error {
			statusMu.Lock()
			st := status
			statusMu.Unlock()
			if st.URL == "" {
				return errors.New("not completed yet")
			}
			n, err := countCSV(ctx, st.URL)
			if err != nil {
				return err
			}
			return want(n, int(st.Progress), "rows downloaded")
		}},
		{"notifier called the export's CallbackUrl with status completed", func(context.Context) error {
			for _, c := range sink.Calls() {
				var st events.ExportStatus
				if c.Path == "/hooks/export" && json.Unmarshal(c.Body, &st) == nil && st.RID == rid && st.Status == events.StatusCompleted {
					return nil
				}
			}
			return errors.New("no callback yet")
		}},
	}

	// Poll every expectation until it holds or time runs out.
	lastErr := make([]error, len(expectations))
	var wg sync.WaitGroup
	for i, e := range expectations {
		wg.Go(func() {
			for {
				err := e.check(ctx)
				if err == nil {
					say("  ✓ %-62s %5.1fs", e.what, time.Since(started).Seconds())
					lastErr[i] = nil
					return
				}
				lastErr[i] = err
				select {
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	wg.Wait()
	var missing []string
	for i, e := range expectations {
		if lastErr[i] != nil {
			say("  ✗ %s: %v", e.what, lastErr[i])
			missing = append(missing, e.what)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("scenario: %d of %d expected events missing after %s: %s", len(missing), len(expectations), time.Since(started).Round(time.Millisecond), strings.Join(missing, "; "))
	}
	say("Scenario passed: %d of %d expected events arrived in %.1fs", len(expectations), len(expectations), time.Since(started).Seconds())
	return nil
}

func want(got, want int, what string) error {
	if got != want {
		return fmt.Errorf("%d %s, want %d", got, what, want)
	}
	return nil
}

// post sends body as JSON and returns the decoded 2xx answer.
func post(ctx context.Context, url string, body any) (map[string]string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-User", "ada") // the demo's auth service lets ada export
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("POST %s: %s: %s", url, resp.Status, rb)
	}
	var out map[string]string
	if err := json.Unmarshal(rb, &out); err != nil {
		return nil, fmt.Errorf("POST %s: %w", url, err)
	}
	return out, nil
}

// get decodes the 200 JSON answer of url into v.
func get(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// countCSV downloads url and returns its number of records after the
// header.
func countCSV(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	r := csv.NewReader(resp.Body)
	n := -1 // the header
	for {
		_, err := r.Read()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("download is not valid CSV: %w", err)
		}
		n++
	}
}
