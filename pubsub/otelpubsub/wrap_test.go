package otelpubsub_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// plainBroker has only the methods of pubsub.Broker.
type plainBroker struct{ pubsub.Broker }

// groupOnlyBroker adds CreateGroup, not Ping.
type groupOnlyBroker struct {
	pubsub.Broker
	pubsub.GroupCreator
}

// pingOnlyBroker adds Ping, not CreateGroup.
type pingOnlyBroker struct {
	pubsub.Broker
	err error
}

func (b pingOnlyBroker) Ping(context.Context) error { return b.err }

// groupPingBroker adds CreateGroup and Ping.
type groupPingBroker struct{ pingOnlyBroker }

func (b groupPingBroker) CreateGroup(ctx context.Context, topic, group string) error {
	return b.Broker.(pubsub.GroupCreator).CreateGroup(ctx, topic, group)
}

type pinger interface{ Ping(context.Context) error }

func newMemory(t *testing.T) *memory.Broker {
	t.Helper()
	mb, err := memory.New(memory.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = mb.Close() })
	return mb
}

func TestWrapKeepsOptionalInterfaces(t *testing.T) {
	mb := newMemory(t)
	errDown := errors.New("down")
	for _, tc := range []struct {
		name             string
		inner            pubsub.Broker
		wantGroup, wantP bool
	}{
		{"plain", plainBroker{mb}, false, false},
		{"group", groupOnlyBroker{mb, mb}, true, false},
		{"ping", pingOnlyBroker{mb, errDown}, false, true},
		{"group and ping", groupPingBroker{pingOnlyBroker{mb, errDown}}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := otelpubsub.Wrap(tc.inner)
			gc, isGroup := b.(pubsub.GroupCreator)
			p, isPing := b.(pinger)
			assert.Equal(t, tc.wantGroup, isGroup, "GroupCreator")
			assert.Equal(t, tc.wantP, isPing, "Pinger")
			if isGroup {
				assert.NoError(t, gc.CreateGroup(context.Background(), "t", "g"))
				assert.ErrorIs(t, gc.CreateGroup(context.Background(), "t", "bad group"), pubsub.ErrInvalidGroup)
			}
			if isPing {
				assert.ErrorIs(t, p.Ping(context.Background()), errDown, "Ping forwards")
			}
			assert.Equal(t, tc.inner, b.(interface{ Unwrap() pubsub.Broker }).Unwrap())
		})
	}
}

func TestCreateGroupKeepsMessagesForLaterSubscribe(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.wrapMemory(t)
	require.NoError(t, b.(pubsub.GroupCreator).CreateGroup(ctx, "orders", "g"))
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "early"}))
	got := make(spanContexts, 1)
	_, err := b.Subscribe(ctx, "orders", "g", got.handler(nil))
	require.NoError(t, err)
	sc := got.next(t)
	send := tel.ended(t, trace.SpanKindProducer, 1)[0]
	assert.Equal(t, send.SpanContext().TraceID(), sc.TraceID())
}

func TestSystemAttribute(t *testing.T) {
	for _, tc := range []struct {
		name  string
		inner func(t *testing.T) pubsub.Broker
		opts  []otelpubsub.Option
		want  string
	}{
		{"memory inferred", func(t *testing.T) pubsub.Broker { return newMemory(t) }, nil, "memory"},
		{"other broker", func(t *testing.T) pubsub.Broker { return plainBroker{newMemory(t)} }, nil, "switchyard"},
		{"WithSystem", func(t *testing.T) pubsub.Broker { return newMemory(t) }, []otelpubsub.Option{otelpubsub.WithSystem("rabbitmq")}, "rabbitmq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel := newTelemetry(t)
			b := otelpubsub.Wrap(tc.inner(t), tel.options(tc.opts...)...)
			require.NoError(t, b.Publish(context.Background(), "t", &pubsub.Message{}))
			send := tel.ended(t, trace.SpanKindProducer, 1)[0]
			assert.Contains(t, send.Attributes(), semconv.MessagingSystemKey.String(tc.want))
		})
	}
}

// TestNoProviders: with the global (unset) providers, or explicit no-op
// ones, messages flow, nothing panics and no trace metadata is added.
func TestNoProviders(t *testing.T) {
	for name, opts := range map[string][]otelpubsub.Option{
		"global":   nil,
		"explicit": {otelpubsub.WithTracerProvider(tracenoop.NewTracerProvider()), otelpubsub.WithMeterProvider(metricnoop.NewMeterProvider())},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := otelpubsub.Wrap(newMemory(t), append(opts, otelpubsub.WithLogger(nil))...)
			delivered := make(chan *pubsub.Message, 2)
			_, err := b.Subscribe(ctx, "orders", "g", func(ctx context.Context, m *pubsub.Message) error {
				assert.False(t, trace.SpanContextFromContext(ctx).IsValid(), "no span without a provider")
				delivered <- m
				if m.Attempt == 1 {
					panic("still re-panicked")
				}
				return nil
			})
			require.NoError(t, err)
			require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "n", Metadata: map[string]string{"k": "v"}}))
			<-delivered
			m := <-delivered
			assert.Equal(t, map[string]string{"k": "v"}, m.Metadata, "no trace metadata added")
			assert.Equal(t, 2, m.Attempt)
		})
	}
}

// TestNoProviderStillPropagates: a trace context in ctx (from an incoming
// request, say) reaches the handler even without a provider.
func TestNoProviderStillPropagates(t *testing.T) {
	ctx := context.Background()
	b := otelpubsub.Wrap(newMemory(t), otelpubsub.WithLogger(nil))
	got := make(spanContexts, 1)
	_, err := b.Subscribe(ctx, "orders", "g", got.handler(nil))
	require.NoError(t, err)
	incoming := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	require.NoError(t, b.Publish(trace.ContextWithRemoteSpanContext(ctx, incoming), "orders", &pubsub.Message{}))
	sc := got.next(t)
	assert.Equal(t, incoming.TraceID(), sc.TraceID())
}
