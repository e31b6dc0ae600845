package rabbitmq

import (
	"fmt"
	"strconv"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/pubsub"
)

// AMQP headers the transport sets and reads; they are not metadata.
const (
	// headerKey carries Message.Key.
	headerKey = "x-switchyard-key"
	// headerAttempt carries the attempt number of a retry copy: 1 + the
	// number of deliveries before the copy was made. Absent means 1.
	headerAttempt = "x-switchyard-attempt"
	// headerDeliveryCount is set by quorum queues on redelivered messages:
	// how many times the message was returned to the queue (requeued or left
	// unacknowledged by a closed channel).
	headerDeliveryCount = "x-delivery-count"
)

// brokerHeaders are set by RabbitMQ (delivery count, dead-lettering); they
// are neither metadata nor copied to retries.
var brokerHeaders = map[string]bool{
	headerDeliveryCount:      true,
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
func checkMessage(m *pubsub.Message) error {
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
func toPublishing(m *pubsub.Message) amqp.Publishing {
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

// fromDelivery maps a delivery back to a message (Metadata nil when there is
// none; delivery.Message gives handlers an empty map), with Attempt set: the
// x-switchyard-attempt header (1 when absent) plus the redeliveries of this
// copy, counted by x-delivery-count on quorum queues and flagged by
// Redelivered (counted as one) on classic queues.
func fromDelivery(d *amqp.Delivery) *pubsub.Message {
	m := &pubsub.Message{ID: d.MessageId, Payload: d.Body}
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
		redeliveries = 0
		if d.Redelivered {
			redeliveries = 1
		}
	}
	m.Attempt = attempt + redeliveries
	return m
}

// retryPublishing is the copy of d that goes to a retry queue: the same
// properties, body and application headers, with attempt as its
// x-switchyard-attempt and the broker's headers removed.
func retryPublishing(d *amqp.Delivery, attempt int) amqp.Publishing {
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
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}

// headerString renders a header value as metadata. Switchyard writes only
// strings; values of other types, from other clients, are formatted.
func headerString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
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
