package rabbitmq

import (
	"fmt"
	"strconv"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// AMQP headers the transport sets and reads; they are not metadata.
const (
	// headerKey carries Message.Key.
	headerKey = "x-switchyard-key"
	// headerAttempt carries the Attempt of the transport's copies of a
	// message (retry copies, messages handed back untouched). Absent
	// means 1.
	headerAttempt = "x-switchyard-attempt"
	// headerDeliveryCount is set by quorum queues (and by classic queues
	// from RabbitMQ 4.3) on redelivered messages: how many times the
	// message went back to the queue in a way the broker counts as a
	// failed delivery (see the package documentation).
	headerDeliveryCount = "x-delivery-count"
)

// brokerHeaders are set by RabbitMQ (delivery count, dead-lettering); they
// are neither metadata nor copied to the transport's copies of a message.
var brokerHeaders = map[string]bool{
	headerDeliveryCount:      true,
	"x-acquired-count":       true,
	"x-death":                true,
	"x-first-death-exchange": true,
	"x-first-death-queue":    true,
	"x-first-death-reason":   true,
	"x-last-death-exchange":  true,
	"x-last-death-queue":     true,
	"x-last-death-reason":    true,
}

// reservedHeader reports whether metadata key k would collide with a header
// of the transport or the broker.
func reservedHeader(k string) bool {
	return k == headerKey || k == headerAttempt || brokerHeaders[k] || strings.HasPrefix(k, headerCloudEvents)
}

// headerCloudEvents prefixes CloudEvents attributes in the AMQP binding of
// CloudEvents: metadata "ce-id" travels as header "cloudEvents:id".
const headerCloudEvents = "cloudEvents:"

// headerName is the AMQP header that carries metadata key k.
func headerName(k string) string {
	if rest, ok := strings.CutPrefix(k, pubsub.MetadataCloudEventsPrefix); ok {
		return headerCloudEvents + rest
	}
	return k
}

// metadataKey is the metadata key that AMQP header h carries.
func metadataKey(h string) string {
	if rest, ok := strings.CutPrefix(h, headerCloudEvents); ok {
		return pubsub.MetadataCloudEventsPrefix + rest
	}
	return h
}

// maxShortString is the longest AMQP short string: message_id, content_type
// and header names are short strings.
const maxShortString = 255

// checkMessage reports why m cannot be carried as an AMQP message, or nil.
func checkMessage(m *driver.Message) error {
	if len(m.ID) > maxShortString {
		return fmt.Errorf("ID is %d bytes, AMQP message_id holds at most %d", len(m.ID), maxShortString)
	}
	for k, v := range m.Metadata {
		switch {
		case reservedHeader(k):
			return fmt.Errorf("metadata key %q is reserved for the transport or RabbitMQ", k)
		case len(headerName(k)) > maxShortString:
			return fmt.Errorf("metadata key %.20q... is %d bytes, AMQP header names hold at most %d", k, len(headerName(k)), maxShortString)
		case k == pubsub.MetadataContentType && len(v) > maxShortString:
			return fmt.Errorf("metadata %q is %d bytes, AMQP content_type holds at most %d", k, len(v), maxShortString)
		}
	}
	return nil
}

// toPublishing maps a message checked by checkMessage to a persistent AMQP
// message: ID → message_id, Metadata["content-type"] → content_type, other
// metadata → string headers, Key → header x-switchyard-key.
func toPublishing(m *driver.Message) amqp.Publishing {
	var h amqp.Table
	if len(m.Metadata) > 0 || m.Key != "" {
		h = make(amqp.Table, len(m.Metadata)+1)
	}
	var contentType string
	for k, v := range m.Metadata {
		if k == pubsub.MetadataContentType && v != "" {
			contentType = v
			continue
		}
		h[headerName(k)] = v
	}
	if m.Key != "" {
		h[headerKey] = m.Key
	}
	return amqp.Publishing{
		Headers:      h,
		ContentType:  contentType,
		DeliveryMode: amqp.Persistent,
		MessageId:    m.ID,
		Body:         m.Payload,
	}
}

// fromDelivery maps a delivery from a queue of type qt back to a message
// (Metadata nil when there is none), with Attempt set: the
// x-switchyard-attempt header (1 when absent) plus the redeliveries of this
// copy that the broker counted. Quorum queues count them in
// x-delivery-count; classic queues only flag a redelivery (counted as
// one), until RabbitMQ 4.3, which counts there too. A message without a
// message_id (from another client) gets the ID derivedID gives it.
func fromDelivery(d *amqp.Delivery, qt QueueType) *driver.Message {
	m := &driver.Message{ID: d.MessageId, Payload: d.Body}
	if m.ID == "" {
		m.ID = derivedID(d)
	}
	if len(d.Headers) > 0 || d.ContentType != "" {
		m.Metadata = make(map[string]string, len(d.Headers)+1)
	}
	attempt, redeliveries := 1, -1
	for k, v := range d.Headers {
		switch {
		case k == headerKey:
			m.Key = headerString(v)
		case k == headerAttempt:
			if n, ok := headerInt(v); ok && n >= 1 {
				attempt = n
			}
		case k == headerDeliveryCount:
			if n, ok := headerInt(v); ok && n >= 0 {
				redeliveries = n
			}
		case brokerHeaders[k]:
		default:
			m.Metadata[metadataKey(k)] = headerString(v)
		}
	}
	if d.ContentType != "" {
		m.Metadata[pubsub.MetadataContentType] = d.ContentType
	}
	if redeliveries < 0 {
		// No count: none on a quorum queue (RabbitMQ 4.3 redelivers
		// messages returned with basic.nack flagged but not counted); a
		// flag on a classic queue.
		redeliveries = 0
		if d.Redelivered && qt == QueueClassic {
			redeliveries = 1
		}
	}
	m.Attempt = attempt + redeliveries
	return m
}

// copyOf is the transport's copy of delivery d (a retry copy, a message
// handed back): the same properties, body and application headers, with
// message_id id (the delivered message's ID, derived if it had none) and
// attempt as its x-switchyard-attempt, and the broker's headers removed.
func copyOf(d *amqp.Delivery, id string, attempt int) amqp.Publishing {
	h := make(amqp.Table, len(d.Headers)+1)
	for k, v := range d.Headers {
		if !brokerHeaders[k] {
			h[k] = v
		}
	}
	h[headerAttempt] = int64(attempt)
	return amqp.Publishing{
		Headers:         h,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		MessageId:       id,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}

// headerInt reads an integer header of any AMQP integer type, or a decimal
// string.
func headerInt(v any) (int, bool) {
	switch v := v.(type) {
	case int:
		return v, true
	case int8:
		return int(v), true
	case int16:
		return int(v), true
	case int32:
		return int(v), true
	case int64:
		return int(v), true
	case uint8:
		return int(v), true
	case uint16:
		return int(v), true
	case uint32:
		return int(v), true
	case uint64:
		return int(v), true
	case string:
		n, err := strconv.Atoi(v)
		return n, err == nil
	}
	return 0, false
}
