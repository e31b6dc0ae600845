// Package otelpubsub traces, measures and logs a Switchyard broker with
// OpenTelemetry. It is built on package pubsub's hooks, so that pubsub and
// the transports stay free of OpenTelemetry: Instrument returns one
// pubsub.BrokerOption that adds publish middleware (pubsub.WithPublishMiddleware)
// and an observer (pubsub.WithObserver) to the broker it is given to:
//
//	b, err := transport.Open(ctx, url,
//		otelpubsub.Instrument(otelpubsub.WithSystem(otelpubsub.SystemOf(url))),
//		pubsub.WithLogger(logger))
//
// Give Instrument once per broker (twice counts everything twice). Every
// subscription of the broker is then observed; Subscribe needs nothing more.
//
// The outcomes it records are the delivery loop's own: the loop tells the
// observer what it did with each delivery (pubsub.Settlement), and this
// package never guesses from a handler's return value.
//
// Without providers set by the application (otel.SetTracerProvider,
// otel.SetMeterProvider, or WithTracerProvider and WithMeterProvider) it
// makes no spans and records nothing, but still passes on a trace context
// that Publish's ctx carries. It works the same on every transport: the
// trace context travels in Message.Metadata, which every transport carries
// unchanged (the conformance suite checks it).
//
// # Traces
//
// Publish starts, for each message, a span "send <topic>" of kind Producer.
// Its parent is ctx's span; when ctx has none, the trace context already in
// the message's metadata (a message being forwarded, or a dead letter the
// loop publishes to pubsub.WithDeadLetter's topic, which thus stays in the
// original trace); else it is a root. The broker is given a copy of the
// message whose metadata also holds the span's context, written by the
// propagator (WithPropagator; W3C Trace Context by default: metadata keys
// "traceparent" and "tracestate"). The caller's Message and its Metadata
// map are not modified; only an empty ID is set, as Publish always does.
// When Publish fails, its spans get an error status, error.type and an
// exception event. A Publish to an invalid topic name makes no span.
//
// Each delivery gets a span "process <topic>" of kind Consumer, whose
// parent is the send span read from the metadata (a remote parent), or a
// new root when the metadata has no trace context; never a span of
// Subscribe's context. It starts when the loop receives the delivery
// (Observer.OnReceive), the middleware and handler run under it, and it
// ends with the delivery's final outcome (switchyard.handler.outcome). Every
// redelivery has a span of its own with the same parent; so has a dead
// letter replayed from the group's dead letters, which keeps the original
// metadata. A handler's error or panic gives the span an error status,
// error.type and an exception event (for a panic, with the panic's own
// stack); an ack, retry or release the broker refused (settle_failed) gives
// it an error status with the broker's error. A parked delivery (its dead
// letter not stored yet) gets an exception event with outcome "parked" and
// stays open until its dead letter is stored or it is handed back.
// Deliveries the loop settles without running the handler (taken while the
// subscription stopped: released; Attempt past pubsub.WithMaxAttempts:
// dead-lettered at once) get a span of their own, of no length, at their
// final outcome.
//
// Span attributes (OpenTelemetry messaging semantic conventions v1.43.0,
// plus two of Switchyard's):
//
//	messaging.system                 WithSystem (SystemOf(url)): "memory", "rabbitmq", "gcp_pubsub", "nats"; default "switchyard"
//	messaging.destination.name       the topic
//	messaging.consumer.group.name    the group (process spans)
//	messaging.operation.type         "send" or "process"
//	messaging.operation.name         "send" or "process"
//	messaging.message.id             Message.ID
//	messaging.message.body.size      len(Message.Payload)
//	switchyard.message.attempt       Message.Attempt (process spans; AttemptKey)
//	switchyard.handler.outcome       the final outcome (process spans; OutcomeKey)
//	error.type                       the handler's failure, else the broker's error
//
// # Outcomes
//
// The outcome names are pubsub.Outcome's, as the loop reports them:
//
//	acked          the handler returned nil and the message was acked
//	retried        handed back with the next Attempt: the handler failed, or it
//	               was cut off (or its dead letter parked) at Shutdown's deadline
//	dead_lettered  stored in the group's dead letters (or published to
//	               pubsub.WithDeadLetter's topic) and acked
//	released       handed back untouched by a stopping subscription, Attempt
//	               unchanged (also when the handler returned an error wrapping
//	               pubsub.ErrClosed while its subscription stopped)
//	parked         the dead letter could not be stored; the loop keeps trying.
//	               Not final: dead_lettered or retried follows
//	settle_failed  the broker refused the ack, retry or release; it redelivers
//	               the message by itself
//
// Every delivery has exactly one final outcome (any but parked).
//
// # Metrics
//
// The instruments, from the meter named
// "github.com/switchyard-go/switchyard/pubsub/otelpubsub":
//
//	messaging.client.sent.messages      counter {message}          topic; error.type when Publish failed
//	messaging.client.consumed.messages  counter {message}          topic, group: deliveries to handlers
//	messaging.process.duration          histogram s                topic, group, outcome; error.type on failure
//	switchyard.messages.acked           counter {message}          topic, group
//	switchyard.messages.retried         counter {message}          topic, group
//	switchyard.messages.dead_lettered   counter {message}          topic, group
//	switchyard.messages.released        counter {message}          topic, group
//	switchyard.messages.parked          counter {message}          topic, group
//	switchyard.messages.settle_failed   counter {message}          topic, group
//	switchyard.handlers.in_flight       up-down counter {handler}  topic, group
//
// Every point also has messaging.system; topic is messaging.destination.name,
// group messaging.consumer.group.name, outcome switchyard.handler.outcome;
// the sent, consumed and duration instruments have messaging.operation.name.
// Published messages are the sent points without error.type.
//
// Each outcome the loop reports is counted once, in the counter of its
// name; so a parked message is counted as parked and then as dead-lettered
// (or retried). Consumed counts deliveries whose handler ran (redeliveries
// included); a delivery settled without running the handler is in an
// outcome counter only. In flight goes up when a handler starts and down at
// its delivery's first outcome: a parked message is not in flight. The
// duration histogram has one point per handler run, recorded at the final
// outcome with the handler's duration as the loop measured it (for a
// handler cut off at Shutdown's deadline, the time until the cut). Once
// every delivery is settled, for each topic and group:
//
//	consumed = duration count
//	acked + retried + dead_lettered + released + settle_failed = consumed + deliveries settled without a handler
//
// # Logs
//
// WithLogger sets the logger (default slog.Default()) of the
// instrumentation's own lines, all at Debug: "otelpubsub: published" or
// "otelpubsub: publish failed" per message, and "otelpubsub: settled" per
// final outcome, with topic, group, message_id, attempt, outcome, duration,
// trace_id and span_id (see WithLogger). The delivery loop's and the
// transport's lines (failures, panics with their stack, dead letters,
// settle failures, reconnections) go to the logger given to the broker with
// pubsub.WithLogger. The instrumentation's lines never carry a URL or a
// credential.
package otelpubsub
