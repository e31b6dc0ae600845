package gcppubsub_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/gcppubsub"
)

const attrID = "switchyard-id"

// TestPublishHonoursEmulatorHost: with PUBSUB_EMULATOR_HOST set, messages
// reach that server, with ID, Key and Metadata as attributes and ordering
// key, and the topic is created on first use.
func TestPublishHonoursEmulatorHost(t *testing.T) {
	e := startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	ctx := context.Background()
	sent := []*pubsub.Message{
		{ID: "m-1", Key: "cust-1", Metadata: map[string]string{"trace": "t1"}, Payload: []byte{0xff, 0}},
		{Payload: []byte("no id yet")},
	}
	require.NoError(t, b.Publish(ctx, "orders", sent...))
	require.Len(t, sent[1].ID, 32, "Publish sets the ID")

	got := e.Messages()
	require.Len(t, got, 2)
	byID := map[string]*pstest.Message{}
	for _, m := range got {
		assert.Equal(t, "projects/"+testProject+"/topics/orders", m.Topic)
		byID[m.Attributes[attrID]] = m
	}
	require.Contains(t, byID, "m-1")
	require.Contains(t, byID, sent[1].ID)
	assert.Equal(t, map[string]string{attrID: "m-1", "trace": "t1"}, byID["m-1"].Attributes)
	assert.Equal(t, "cust-1", byID["m-1"].OrderingKey)
	assert.Equal(t, []byte{0xff, 0}, byID["m-1"].Data)
	assert.Equal(t, map[string]string{attrID: sent[1].ID}, byID[sent[1].ID].Attributes)
	assert.Equal(t, "", byID[sent[1].ID].OrderingKey)

	// The variable is read when the broker is made: pointed at a closed
	// port, a new broker cannot publish.
	t.Setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:1")
	other := newBroker(t, gcppubsub.Config{})
	tctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	err := other.Publish(tctx, "orders", pubsub.NewMessage([]byte("x")))
	assert.Equal(t, context.DeadlineExceeded, err, "context errors come back unwrapped")
	assert.Len(t, e.Messages(), 2, "nothing reached the emulator")
}

// fill gives m the largest payload that keeps it within limit bytes encoded.
func fill(m *pubsub.Message, limit int) {
	attrs := map[string]string{attrID: m.ID}
	for k, v := range m.Metadata {
		attrs[k] = v
	}
	for n := limit; n >= 0; n-- {
		if proto.Size(&pb.PubsubMessage{Data: make([]byte, n), Attributes: attrs, OrderingKey: m.Key}) <= limit {
			m.Payload = make([]byte, n)
			return
		}
	}
}

// sizedPayload returns the payload length that makes a message with id and
// no metadata exactly size bytes encoded, as Pub/Sub counts.
func sizedPayload(t *testing.T, id string, size int) int {
	for n := size; n > 0; n-- {
		if proto.Size(&pb.PubsubMessage{Data: make([]byte, n), Attributes: map[string]string{attrID: id}}) == size {
			return n
		}
	}
	t.Fatalf("no payload makes %d bytes", size)
	return 0
}

func TestPublishChecksLimitsBeforeSending(t *testing.T) {
	e := startEmulator(t)
	const limit = 4000
	b := newBroker(t, gcppubsub.Config{MaxMessageBytes: limit})
	ctx := context.Background()
	atLimit := sizedPayload(t, "id", limit)
	meta := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("k%02d", i)] = "v"
		}
		return m
	}
	cases := []struct {
		name string
		msg  *pubsub.Message
		want error // nil: accepted
	}{
		{"nil message", nil, pubsub.ErrInvalidMessage},
		{"at the size limit", &pubsub.Message{ID: "id", Payload: make([]byte, atLimit)}, nil},
		{"one byte over", &pubsub.Message{ID: "id", Payload: make([]byte, atLimit+1)}, pubsub.ErrMessageTooLarge},
		{"metadata key of 256 bytes", &pubsub.Message{Metadata: map[string]string{strings.Repeat("k", 256): "v"}}, nil},
		{"metadata key of 257 bytes", &pubsub.Message{Metadata: map[string]string{strings.Repeat("k", 257): "v"}}, pubsub.ErrMessageTooLarge},
		{"metadata value of 1024 bytes", &pubsub.Message{Metadata: map[string]string{"k": strings.Repeat("v", 1024)}}, nil},
		{"metadata value of 1025 bytes", &pubsub.Message{Metadata: map[string]string{"k": strings.Repeat("v", 1025)}}, pubsub.ErrMessageTooLarge},
		{"94 metadata entries", &pubsub.Message{Metadata: meta(94)}, nil},
		{"95 metadata entries", &pubsub.Message{Metadata: meta(95)}, pubsub.ErrMessageTooLarge},
		{"Key of 1025 bytes", &pubsub.Message{Key: strings.Repeat("k", 1025)}, pubsub.ErrMessageTooLarge},
		{"ID of 1025 bytes", &pubsub.Message{ID: strings.Repeat("i", 1025)}, pubsub.ErrMessageTooLarge},
		{"empty metadata key", &pubsub.Message{Metadata: map[string]string{"": "v"}}, pubsub.ErrInvalidMessage},
		{"metadata key goog-", &pubsub.Message{Metadata: map[string]string{"googclient_x": "v"}}, pubsub.ErrInvalidMessage},
		{"reserved key switchyard-id", &pubsub.Message{Metadata: map[string]string{attrID: "x"}}, pubsub.ErrInvalidMessage},
		{"reserved key switchyard-to", &pubsub.Message{Metadata: map[string]string{"switchyard-to": "g"}}, pubsub.ErrInvalidMessage},
		{"reserved key switchyard-attempt", &pubsub.Message{Metadata: map[string]string{"switchyard-attempt": "2"}}, pubsub.ErrInvalidMessage},
		{"metadata value not UTF-8", &pubsub.Message{Metadata: map[string]string{"k": "\xff"}}, pubsub.ErrInvalidMessage},
		{"Key not UTF-8", &pubsub.Message{Key: "\xc3"}, pubsub.ErrInvalidMessage},
		{"ID not UTF-8", &pubsub.Message{ID: "\xc3("}, pubsub.ErrInvalidMessage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.ClearMessages()
			marker := &pubsub.Message{ID: "marker", Payload: []byte("m")}
			err := b.Publish(ctx, "limits", marker, tc.msg)
			if tc.want == nil {
				require.NoError(t, err)
				assert.Len(t, e.Messages(), 2)
				return
			}
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), "pubsub: message 2 of 2 to limits")
			assert.Empty(t, e.Messages(), "a failed check sends nothing of the batch")
		})
	}
}

// TestPublishDefaultLimit: the default limit is Pub/Sub's, less headroom.
func TestPublishDefaultLimit(t *testing.T) {
	startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	n := sizedPayload(t, "big", gcppubsub.DefaultMaxMessageBytes+1)
	err := b.Publish(context.Background(), "big", &pubsub.Message{ID: "big", Payload: make([]byte, n)})
	require.ErrorIs(t, err, pubsub.ErrMessageTooLarge)
	assert.Contains(t, err.Error(), fmt.Sprintf("is %d bytes encoded (payload %d), over the limit of %d", gcppubsub.DefaultMaxMessageBytes+1, n, gcppubsub.DefaultMaxMessageBytes))
}

// TestPublishDeadLetterFits: a dead letter of a message at every limit is
// still accepted; its free-text reason is cut to fit an attribute.
func TestPublishDeadLetterFits(t *testing.T) {
	e := startEmulator(t)
	const limit = 4000
	b := newBroker(t, gcppubsub.Config{MaxMessageBytes: limit})
	ctx := context.Background()
	meta := map[string]string{}
	for i := range 94 {
		meta[fmt.Sprintf("k%02d", i)] = "v"
	}
	orig := &pubsub.Message{ID: "id", Key: strings.Repeat("k", 1024), Metadata: meta}
	fill(orig, limit)
	require.NotEmpty(t, orig.Payload)
	require.NoError(t, b.Publish(ctx, "t", orig), "the original fits")

	dl := orig.Clone()
	reason := strings.Repeat("é", 3000) + "\xff"
	dl.Metadata[pubsub.MetadataDeadLetterReason] = reason
	dl.Metadata[pubsub.MetadataDeadLetterTime] = time.Now().UTC().Format(time.RFC3339Nano)
	dl.Metadata[pubsub.MetadataOriginalTopic] = strings.Repeat("t", 200)
	dl.Metadata[pubsub.MetadataGroup] = strings.Repeat("g", 200)
	dl.Metadata[pubsub.MetadataAttempts] = "100"
	require.NoError(t, b.Publish(ctx, "graveyard", dl))

	got := e.Messages()
	require.Len(t, got, 2)
	r := got[1].Attributes[pubsub.MetadataDeadLetterReason]
	assert.Len(t, r, 1024, "cut to Pub/Sub's attribute value limit")
	assert.True(t, utf8.ValidString(r))
	assert.Equal(t, strings.Repeat("é", 512), r)
	assert.Len(t, got[1].Attributes, 100)
}

// TestPublishErrorsNameTheTopic: errors from Pub/Sub name the topic, keep
// the gRPC status and say which messages failed.
func TestPublishErrorsNameTheTopic(t *testing.T) {
	startEmulator(t, pstest.WithErrorInjection("Publish", codes.PermissionDenied, "caller lacks pubsub.topics.publish"))
	b := newBroker(t, gcppubsub.Config{})
	msgs := []*pubsub.Message{pubsub.NewMessage([]byte("a")), pubsub.NewMessage([]byte("b")), {Key: "k", Payload: []byte("c")}}
	err := b.Publish(context.Background(), "orders", msgs...)
	require.Error(t, err)
	assert.Equal(t, codes.PermissionDenied, status.Code(err))
	var pe *pubsub.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, []int{0, 1, 2}, pe.Failed)
	assert.Equal(t, []string{msgs[0].ID, msgs[1].ID, msgs[2].ID}, pe.IDs)
	assert.Contains(t, err.Error(), "gcppubsub: publish to projects/switchyard-test/topics/orders: ")
	assert.Contains(t, err.Error(), "caller lacks pubsub.topics.publish")
}

// keyRefuser fails the publish requests that carry a message with one
// ordering key.
type keyRefuser struct{ key string }

func (k keyRefuser) React(req any) (bool, any, error) {
	if r, ok := req.(*pb.PublishRequest); ok {
		for _, m := range r.GetMessages() {
			if m.GetOrderingKey() == k.key {
				return true, nil, status.Errorf(codes.InvalidArgument, "refused key %s", k.key)
			}
		}
	}
	return false, nil, nil
}

// TestPublishReportsFailedIndexes: Pub/Sub answers per request, and the
// client sends each ordering key in requests of its own: only the messages
// of the refused key are reported, by index, and the others are accepted.
func TestPublishReportsFailedIndexes(t *testing.T) {
	e := startEmulator(t, pstest.ServerReactorOption{FuncName: "Publish", Reactor: keyRefuser{"bad"}})
	b := newBroker(t, gcppubsub.Config{})
	msgs := []*pubsub.Message{
		{ID: "a", Key: "good-1"}, {ID: "b", Key: "bad"}, {ID: "c", Key: "good-2"}, {ID: "d", Key: "bad"},
	}
	err := b.Publish(context.Background(), "orders", msgs...)
	var pe *pubsub.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, []int{1, 3}, pe.Failed)
	assert.Equal(t, []string{"b", "d"}, pe.IDs)
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	var sent []string
	for _, m := range e.Messages() {
		sent = append(sent, m.Attributes[attrID])
	}
	assert.ElementsMatch(t, []string{"a", "c"}, sent)
}

// failOnce fails the next publish request, once armed.
type failOnce struct{ armed *atomic.Bool }

func (f failOnce) React(req any) (bool, any, error) {
	if _, ok := req.(*pb.PublishRequest); ok && f.armed.CompareAndSwap(true, false) {
		return true, nil, status.Error(codes.InvalidArgument, "rejected once")
	}
	return false, nil, nil
}

// TestPublishKeepsFailedKeyPaused: after a publish with an ordering key
// fails, the key stays paused, so that no later Publish of the key
// overtakes the failed message: its messages fail with ErrOrderingKeyPaused
// without being sent, other keys are not affected, and the application
// resumes the key through As.
func TestPublishKeepsFailedKeyPaused(t *testing.T) {
	var armed atomic.Bool
	e := startEmulator(t, pstest.ServerReactorOption{FuncName: "Publish", Reactor: failOnce{&armed}})
	b := newBroker(t, gcppubsub.Config{})
	ctx := context.Background()
	require.NoError(t, b.Publish(ctx, "keyed", &pubsub.Message{ID: "k-0", Key: "k"}), "creates the topic")

	armed.Store(true)
	err := b.Publish(ctx, "keyed", &pubsub.Message{ID: "k-1", Key: "k"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rejected once")
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.ErrorIs(t, err, pubsub.ErrOrderingKeyPaused, "the failure says that it paused the key")

	err = b.Publish(ctx, "keyed", &pubsub.Message{ID: "k-2", Key: "k"}, &pubsub.Message{ID: "other-1", Key: "other"})
	var pe *pubsub.PublishError
	require.ErrorAs(t, err, &pe, "the key stays paused")
	assert.Equal(t, []int{0}, pe.Failed)
	assert.ErrorIs(t, err, pubsub.ErrOrderingKeyPaused)
	assert.Contains(t, err.Error(), `ordering key "k"`)

	var keys gcppubsub.OrderingKeys
	require.True(t, b.As(&keys))
	keys.Resume("keyed", "k")
	require.NoError(t, b.Publish(ctx, "keyed", &pubsub.Message{ID: "k-3", Key: "k"}), "resumed")
	keys.Resume("keyed", "never-paused")
	keys.Resume("never-published", "k")

	var sent []string
	for _, m := range e.Messages() {
		sent = append(sent, m.Attributes[attrID])
	}
	assert.Equal(t, []string{"k-0", "other-1", "k-3"}, sent, "k-2 was not sent")
}

func TestPublishContextErrorsUnwrapped(t *testing.T) {
	startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.Equal(t, context.Canceled, b.Publish(ctx, "orders", pubsub.NewMessage(nil)))
	require.NoError(t, b.Publish(context.Background(), "orders", pubsub.NewMessage(nil)), "topic created")
	assert.Equal(t, context.Canceled, b.Publish(ctx, "orders", pubsub.NewMessage(nil)), "known topic")
}

// TestPublishWithoutAutoCreate: with DisableAutoCreate a missing topic is an
// error naming it, and nothing is created.
func TestPublishWithoutAutoCreate(t *testing.T) {
	e := startEmulator(t)
	b := newBroker(t, gcppubsub.Config{DisableAutoCreate: true})
	err := b.Publish(context.Background(), "absent", pubsub.NewMessage([]byte("x")))
	require.Error(t, err)
	assert.Equal(t, codes.NotFound, status.Code(err))
	assert.Contains(t, err.Error(), "gcppubsub: publish to projects/switchyard-test/topics/absent: ")
	var pe *pubsub.PublishError
	assert.True(t, errors.As(err, &pe))

	_, err = e.GServer.GetTopic(context.Background(), &pb.GetTopicRequest{Topic: "projects/switchyard-test/topics/absent"})
	assert.Equal(t, codes.NotFound, status.Code(err), "not created")

	require.NoError(t, newBroker(t, gcppubsub.Config{}).Publish(context.Background(), "present", pubsub.NewMessage(nil)))
	assert.NoError(t, b.Publish(context.Background(), "present", &pubsub.Message{Payload: bytes.Repeat([]byte("x"), 10)}))
}
