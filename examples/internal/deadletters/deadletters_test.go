package deadletters_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/internal/deadletters"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// TestListReplayPurge: the group's dead letters are listed, replayed to the
// group (which then handles them) and purged over HTTP, with 400s for bad
// requests.
func TestListReplayPurge(t *testing.T) {
	ctx := context.Background()
	settled := make(chan pubsub.Settlement, 10)
	b, err := memory.New(memory.Config{}, pubsub.WithLogger(nil), pubsub.WithObserver(pubsub.Observer{
		OnSettle: func(_ context.Context, st pubsub.Settlement) { settled <- st },
	}))
	require.NoError(t, err)
	defer b.Close()
	fixed := make(chan struct{})
	_, err = b.Subscribe(ctx, "orders", "billing", func(context.Context, *pubsub.Message) error {
		select {
		case <-fixed:
			return nil
		default:
			return pubsub.Permanent(errors.New("no price"))
		}
	}, pubsub.WithConcurrency(1))
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "o1", Payload: []byte(`{"n":1}`)}, &pubsub.Message{ID: "o2", Payload: []byte{0xff}}))
	for range 2 {
		assert.Equal(t, pubsub.OutcomeDeadLettered, (<-settled).Outcome)
	}

	l := deadletters.New("billing", b)
	l.Add("orders")
	mux := http.NewServeMux()
	l.Register(mux)
	do := func(method, path, body string) (int, map[string]any) {
		req := httptest.NewRequest(method, path, bytes.NewBufferString(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		var v map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v), rec.Body.String())
		return rec.Code, v
	}

	code, list := do(http.MethodGet, "/api/deadletters", "")
	require.Equal(t, http.StatusOK, code)
	letters := list["dead_letters"].([]any)
	require.Len(t, letters, 2)
	first := letters[0].(map[string]any)
	assert.Equal(t, "o1", first["id"])
	assert.Equal(t, "no price", first["reason"])
	assert.Equal(t, `{"n":1}`, first["payload"])
	assert.Equal(t, float64(1), first["attempts"])
	assert.Equal(t, "ff", letters[1].(map[string]any)["payload"], "non-UTF-8 payloads as hex")
	at, err := time.Parse(time.RFC3339Nano, first["dead_lettered_at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), at, time.Minute)

	for _, tc := range []struct{ body, want string }{
		{`{"topic":"other","ids":["o1"]}`, "topic: want one of [orders]"},
		{`{"topic":"orders"}`, `ids: give the IDs, or "all": true`},
		{`{"topic":"orders","ids":["o1"],"all":true}`, `give either ids or "all": true, not both`},
		{`{"topic":"orders","idz":["o1"]}`, ""},
	} {
		code, v := do(http.MethodPost, "/api/deadletters/replay", tc.body)
		assert.Equal(t, http.StatusBadRequest, code, tc.body)
		if tc.want != "" {
			assert.Equal(t, tc.want, v["detail"], tc.body)
		}
	}

	close(fixed)
	code, v := do(http.MethodPost, "/api/deadletters/replay", `{"topic":"orders","ids":["o1","unknown"]}`)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, map[string]any{"group": "billing", "topic": "orders", "replayed": float64(1)}, v)
	st := <-settled
	assert.Equal(t, pubsub.OutcomeAcked, st.Outcome, "the replayed message is handled again")
	assert.Equal(t, "o1", st.Message.ID)
	assert.Equal(t, 1, st.Message.Attempt)

	code, v = do(http.MethodPost, "/api/deadletters/purge", `{"topic":"orders","all":true}`)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, float64(1), v["purged"])
	_, list = do(http.MethodGet, "/api/deadletters", "")
	assert.Equal(t, []any{}, list["dead_letters"], "an empty list, not null")
}
