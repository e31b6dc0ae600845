// Package otelpubsub traces, measures and logs a pubsub.Broker with
// OpenTelemetry, as a decorator, so that package pubsub and the transports
// stay free of OpenTelemetry:
//
//	b, err := transport.Open(ctx, url)
//	...
//	b = otelpubsub.Wrap(b, otelpubsub.WithLogger(logger))
//
// Without any provider set by the application (otel.SetTracerProvider,
// otel.SetMeterProvider) the wrapper makes no spans and records nothing; it
// still passes on a trace context that ctx carries. It works the same on
// every transport: the trace context travels in Message.Metadata, which
// every transport carries unchanged (the conformance suite checks it).
//
// # Traces
//
// Publish starts, for each message, a span "send <topic>" of kind Producer,
// a child of ctx's span, and publishes a copy of the message whose metadata
// also holds the span's context, written by the propagator (WithPropagator;
// W3C Trace Context by default: metadata keys "traceparent" and
// "tracestate"). The caller's Message keeps its Metadata map untouched; only
// its empty ID is set, as Publish always does. A message that already
// carries trace metadata (one being forwarded, say) has it replaced. When a
// Publish fails, its spans get an error status and error.type.
//
// Each delivery runs the handler under a span "process <topic>" of kind
// Consumer, whose parent is the send span read from the metadata (a remote
// parent), and a new root when the metadata has no trace context, never a
// span of Subscribe's context. Every redelivery is a new process span with
// the same parent. A handler's error, or panic, gives the span an error
// status and an exception event (with the stack for a panic); a panic is
// then re-raised for the delivery loop to recover and retry.
//
// Dead letters are published by the wrapped broker's delivery loop, not
// through the wrapper: they have no send span of their own, and keep the
// trace metadata of the original message, so that a consumer of the
// dead-letter topic continues the original trace.
//
// Span attributes (OpenTelemetry messaging semantic conventions v1.43.0,
// plus two of Switchyard's):
//
//	messaging.system                 WithSystem: "memory", "rabbitmq", "gcp_pubsub", ...
//	messaging.destination.name       the topic
//	messaging.consumer.group.name    the group (process spans)
//	messaging.operation.type         "send" or "process"
//	messaging.operation.name         "send" or "process"
//	messaging.message.id             Message.ID
//	messaging.message.body.size      len(Message.Payload)
//	switchyard.message.attempt       Message.Attempt (process spans; AttemptKey)
//	switchyard.handler.outcome       ack, retry, dead_letter, abandoned (process spans; OutcomeKey)
//	error.type                       on failures
//
// # Metrics
//
// The instruments, from the meter named
// "github.com/switchyard-go/switchyard/pubsub/otelpubsub":
//
//	messaging.client.sent.messages      counter {message}    topic; error.type when Publish failed
//	messaging.client.consumed.messages  counter {message}    topic, group: deliveries, redeliveries included
//	messaging.process.duration          histogram s          topic, group, outcome; error.type on failure
//	switchyard.messages.acked           counter {message}    topic, group
//	switchyard.messages.retried         counter {message}    topic, group
//	switchyard.messages.dead_lettered   counter {message}    topic, group
//	switchyard.handlers.in_flight       up-down counter {handler}  topic, group
//
// Every point also has messaging.system; topic is messaging.destination.name,
// group messaging.consumer.group.name, outcome switchyard.handler.outcome;
// the sent, consumed and duration instruments have messaging.operation.name.
// Published messages are the sent points without error.type.
//
// The acked, retried and dead-lettered counters count handler outcomes as
// the delivery loop will act on them: nil is acked; pubsub.Permanent, or a
// failure (error or panic) of the last attempt (pubsub.WithMaxAttempts) is
// dead-lettered; any other failure is retried. They are counted before the
// loop settles the message, so a settlement that then fails (for example a
// dead-letter publish that fails, after which the loop retries the message
// instead) is not reflected; the loop logs those. A handler whose context was
// cancelled because its subscription stopped without waiting for it has the
// outcome "abandoned" and is in none of the three counters.
//
// # Logs
//
// WithLogger sets a *slog.Logger (default slog.Default()) for the wrapper's
// lines, which carry topic, group, message_id, attempt, trace_id and span_id:
// Debug lines per published message and per handled delivery (with the
// panic's value when a handler panicked; the delivery loop logs the panic at
// Error with its stack). When set, it also becomes every subscription's
// logger (pubsub.WithLogger), unless the Subscribe call sets its own. The
// wrapper never logs URLs or credentials.
package otelpubsub
