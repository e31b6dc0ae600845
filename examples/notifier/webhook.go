package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/switchyard-go/switchyard/examples/internal/webhook"
	"github.com/switchyard-go/switchyard/pubsub"
)

// Webhook request headers.
const (
	// HeaderIdempotencyKey carries the ID of the event that caused the call;
	// retries of one notification carry the same key.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderEvent names the kind of notification ("welcome",
	// "export.completed", "export.failed").
	HeaderEvent = "X-Switchyard-Event"
)

// post sends body as JSON to url. Failures worth retrying return an error;
// answers that retrying cannot change (3xx, which is not followed, and 4xx
// other than 408 and 429) and URLs the client's policy refuses return a
// pubsub.Permanent error, so the event is dead-lettered at once.
func post(ctx context.Context, c *http.Client, url, kind, key string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return pubsub.Permanent(fmt.Errorf("encode %s notification: %w", kind, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return pubsub.Permanent(fmt.Errorf("%s webhook URL does not parse", kind))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderIdempotencyKey, key)
	req.Header.Set(HeaderEvent, kind)
	resp, err := c.Do(req)
	if errors.Is(err, webhook.ErrNotAllowed) {
		return pubsub.Permanent(fmt.Errorf("%s webhook: %w", kind, err))
	}
	if err != nil {
		return fmt.Errorf("%s webhook: %w", kind, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return fmt.Errorf("%s webhook %s answered %s", kind, url, resp.Status)
	default:
		return pubsub.Permanent(fmt.Errorf("%s webhook %s answered %s", kind, url, resp.Status))
	}
}
