package driver

import "context"

// GroupLister is implemented by drivers that can list the consumer groups
// of a topic. It is optional: the portable layer answers
// errors.ErrUnsupported for drivers without it.
type GroupLister interface {
	// ListGroups returns the groups of topic, sorted by name, with what the
	// broker can tell of each (see GroupInfo). A topic the broker does not
	// know returns an error wrapping ErrNotFound; a known topic without
	// groups returns an empty list. A driver that can list groups only in
	// some configurations returns an error wrapping errors.ErrUnsupported
	// in the others.
	ListGroups(ctx context.Context, topic string) ([]GroupInfo, error)
}

// GroupInfo describes one consumer group; pubsub.GroupInfo documents its
// fields. Counts the broker cannot tell are negative (-1).
type GroupInfo struct {
	Name        string
	Backlog     int
	DeadLetters int
}
