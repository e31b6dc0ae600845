package service_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/internal/deadletters"
	"github.com/switchyard-go/switchyard/examples/internal/service"
	"github.com/switchyard-go/switchyard/internal/testlog"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport"
)

var discard = slog.New(slog.DiscardHandler)

// TestServe: the API serves the probes, GET /metrics and the service's
// routes until ctx ends; Background runs meanwhile, and Serve returns nil
// only once it has returned.
func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	mux := service.Mux(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "metrics") }))
	mux.HandleFunc("GET /api/x", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "x") })
	started, stopped := make(chan struct{}), make(chan struct{})
	srv := service.Server{Name: "test", Listener: ln, Logger: discard, Background: func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond)
		close(stopped)
	}}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, mux, "test API listening") }()
	<-started
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": "metrics", "/api/x": "x"} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Contains(t, string(body), want, path)
	}
	cancel()
	require.NoError(t, <-errc)
	select {
	case <-stopped:
	default:
		t.Fatal("Serve returned before Background did")
	}
}

func TestServeListenError(t *testing.T) {
	srv := service.Server{Name: "test", Addr: "256.0.0.1:1", Logger: discard, Background: func(context.Context) { t.Error("Background ran") }}
	assert.ErrorContains(t, srv.Serve(context.Background(), http.NewServeMux(), "never"), "test: listen on 256.0.0.1:1: ")
}

// TestConsumer: Subscribe delivers a topic's events to the handler, and a
// message the handler gives up on is listed in DeadLetters; the groups
// created ahead keep what is published before the consumer runs.
func TestConsumer(t *testing.T) {
	ctx := context.Background()
	b, err := transport.Open(ctx, "mem://service-"+pubsub.NewID()[:8])
	require.NoError(t, err)
	defer b.Close()
	topic := pubsub.NewTopic[string]("greetings")
	require.NoError(t, service.CreateGroups(ctx, b, []string{"g"}, topic.Name()))
	require.NoError(t, topic.Publish(ctx, b, "hello"))
	require.NoError(t, topic.Publish(ctx, b, "crash"))

	c := service.NewConsumer("test", b, "g", discard)
	defer c.Close()
	got := make(chan string, 10)
	err = service.Subscribe(ctx, c, topic, func(_ context.Context, v string, _ *pubsub.Message) error {
		if v == "crash" {
			return errors.New("crash")
		}
		got <- v
		return nil
	}, pubsub.WithMaxAttempts(1))
	require.NoError(t, err)
	select {
	case v := <-got:
		assert.Equal(t, "hello", v)
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}
	var letters []deadletters.Letter
	require.Eventually(t, func() bool {
		letters, err = c.DeadLetters().Letters(ctx)
		return err == nil && len(letters) == 1
	}, 5*time.Second, 20*time.Millisecond, "the crashed message is listed among the dead letters")
	assert.Equal(t, "greetings", letters[0].Topic)
	assert.Equal(t, "g", letters[0].Group)
	assert.Equal(t, "crash", letters[0].Reason)
	assert.Equal(t, 1, letters[0].Attempts)
}

func TestSubscribeError(t *testing.T) {
	ctx := context.Background()
	b, err := transport.Open(ctx, "mem://service-"+pubsub.NewID()[:8])
	require.NoError(t, err)
	require.NoError(t, b.Close())
	c := service.NewConsumer("test", b, "g", discard)
	defer c.Close()
	err = service.Subscribe(ctx, c, pubsub.NewTopic[string]("greetings"), func(context.Context, string, *pubsub.Message) error { return nil })
	assert.ErrorContains(t, err, "test: subscribe to greetings: ")
}

// TestServeLogsShutdown: a service says when it starts shutting down and
// when it stopped.
func TestServeLogsShutdown(t *testing.T) {
	var buf testlog.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil)).With("service", "test")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- service.Server{Name: "test", Listener: ln, Logger: log}.Serve(ctx, http.NewServeMux(), "test API listening")
	}()
	require.Eventually(t, func() bool { return strings.Contains(buf.String(), "test API listening") }, 5*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-errc)
	out := buf.String()
	assert.Regexp(t, `level=INFO msg="shutting down" service=test uptime=\S+\n`, out)
	assert.Regexp(t, `level=INFO msg=stopped service=test err=<nil>\n$`, out)
}
