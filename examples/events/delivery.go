package events

import (
	"time"

	"github.com/switchyard-go/switchyard/pubsub"
)

// DeliveryReportTopic carries DeliveryReport events, keyed by the reported
// message's ID.
const DeliveryReportTopic = "delivery.reports"

// DeliveryReport says what a consumer group's delivery loop did with one
// delivery of a message, as the loop reported it to its pubsub.Observer:
// acked, retried (with the delay), dead-lettered, released... The services
// publish them for the topics they are asked to report (the console shows
// the fan-out of user.activity with them). Reports are best effort, a view:
// the groups' own state (their dead letters, the audit trail) is the
// record.
type DeliveryReport struct {
	Topic     string `json:"topic"`
	Group     string `json:"group"`
	MessageID string `json:"message_id"`
	Key       string `json:"key,omitempty"`
	// Outcome is pubsub.Outcome's name: acked, retried, dead_lettered,
	// released, parked, settle_failed.
	Outcome string `json:"outcome"`
	// Attempt is the delivery's attempt (1 for the first).
	Attempt int `json:"attempt"`
	// DelayMillis is the backoff before the redelivery (retried).
	DelayMillis int64 `json:"delay_ms,omitempty"`
	// Cause is why the message was not acked.
	Cause string `json:"cause,omitempty"`
	// Payload is the message's payload as text (cut to 2 KiB).
	Payload string    `json:"payload,omitempty"`
	At      time.Time `json:"at"`
	// Reporter names the service instance that handled the delivery.
	Reporter string `json:"reporter,omitempty"`
}

// DeliveryReports returns the typed delivery.reports topic of n.
func (n Namespace) DeliveryReports() pubsub.Topic[DeliveryReport] {
	return pubsub.NewTopic[DeliveryReport](n.Topic(DeliveryReportTopic))
}
