package pubsub

import (
	"os"
	"path/filepath"
	"time"
)

// CloudEvents attributes, in binary content mode: typed topics set them as
// metadata under these keys (the CloudEvents attribute name with the "ce-"
// prefix), and the payload's media type, CloudEvents' datacontenttype, as
// MetadataContentType. Transports write them in their protocol's binding:
// memory and Google Pub/Sub as they are ("ce-id" attributes), RabbitMQ as
// "cloudEvents:id" AMQP headers and the content_type property. So consumers
// in other languages can read Switchyard events with a CloudEvents SDK.
const (
	MetadataCloudEventsPrefix = "ce-"
	MetadataCEID              = "ce-id"
	MetadataCESource          = "ce-source"
	MetadataCEType            = "ce-type"
	MetadataCETime            = "ce-time"
	MetadataCESpecVersion     = "ce-specversion"
	// CloudEventsSpecVersion is the version of the CloudEvents specification
	// the attributes follow.
	CloudEventsSpecVersion = "1.0"
)

// WithSource sets the CloudEvents source of the topic's events. Default "/"
// followed by the program's name (the base name of os.Args[0]).
func WithSource(source string) TopicOption { return func(tc *topicConfig) { tc.source = source } }

// WithEventType sets the CloudEvents type of the topic's events. Default the
// topic's name.
func WithEventType(typ string) TopicOption { return func(tc *topicConfig) { tc.eventType = typ } }

var defaultSource = "/" + filepath.Base(os.Args[0])

// setCloudEvents sets m's CloudEvents attributes; ce-id is m.ID.
func (t *topicConfig) setCloudEvents(m *Message, contentType string, now time.Time) {
	m.Metadata[MetadataContentType] = contentType
	m.Metadata[MetadataCEID] = m.ID
	m.Metadata[MetadataCESource] = t.source
	m.Metadata[MetadataCEType] = t.eventType
	m.Metadata[MetadataCETime] = now.UTC().Format(time.RFC3339Nano)
	m.Metadata[MetadataCESpecVersion] = CloudEventsSpecVersion
}
