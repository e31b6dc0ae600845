package events

import "github.com/switchyard-go/switchyard/pubsub"

// Topic names, without a Namespace prefix.
const (
	// UserActivityTopic carries UserActivity events, keyed by user id.
	UserActivityTopic = "user.activity"
	// ExportRequestedTopic carries ExportRequested events, keyed by RID.
	ExportRequestedTopic = "export.requested"
	// ExportCompletedTopic carries ExportFinished events of exports that
	// completed, keyed by RID.
	ExportCompletedTopic = "export.completed"
	// ExportFailedTopic carries ExportFinished events of exports that failed,
	// keyed by RID.
	ExportFailedTopic = "export.failed"
)

// Consumer group names of the example services.
const (
	GroupAudit     = "audit"
	GroupAnalytics = "analytics"
	GroupNotifier  = "notifier"
	GroupExporter  = "exporter"
)

// Namespace prefixes every topic name, so that independent deployments can
// share one broker. The zero value adds no prefix. A Namespace must keep topic
// names valid: letters, digits and "._-", and end in a separator (for
// example "test-42."); ParseNamespace makes one from user input.
type Namespace string

// Topic returns the full name of topic in n.
func (n Namespace) Topic(topic string) string { return string(n) + topic }

// UserActivity returns the typed user.activity topic of n.
func (n Namespace) UserActivity() pubsub.Topic[UserActivity] {
	return pubsub.NewTopic[UserActivity](n.Topic(UserActivityTopic))
}

// ExportRequested returns the typed export.requested topic of n.
func (n Namespace) ExportRequested() pubsub.Topic[ExportRequested] {
	return pubsub.NewTopic[ExportRequested](n.Topic(ExportRequestedTopic))
}

// ExportCompleted returns the typed export.completed topic of n.
func (n Namespace) ExportCompleted() pubsub.Topic[ExportFinished] {
	return pubsub.NewTopic[ExportFinished](n.Topic(ExportCompletedTopic))
}

// ExportFailed returns the typed export.failed topic of n.
func (n Namespace) ExportFailed() pubsub.Topic[ExportFinished] {
	return pubsub.NewTopic[ExportFinished](n.Topic(ExportFailedTopic))
}
