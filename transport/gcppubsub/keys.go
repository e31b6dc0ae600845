package gcppubsub

// OrderingKeys resumes ordering keys that failed publishes paused. When
// Pub/Sub does not accept a message with an ordering key, the key stays
// paused in this broker: its later messages to the topic fail at once with
// an error wrapping pubsub.ErrOrderingKeyPaused, without being sent, so that
// none overtakes the failed one. The application decides what comes next
// (publish the failed messages again, or give them up) and then resumes the
// key. Get it from a broker with As:
//
//	var keys gcppubsub.OrderingKeys
//	if b.As(&keys) {
//		keys.Resume("orders", "customer-7")
//	}
//
// It is safe for concurrent use.
type OrderingKeys interface {
	// Resume lets Publish send messages with ordering key key to topic
	// again. It does nothing for a key that is not paused. It does not
	// block.
	Resume(topic, key string)
}

type orderingKeys struct{ b *broker }

func (k orderingKeys) Resume(topic, key string) {
	k.b.pubs.get(topicPath(k.b.cfg.ProjectID, topicID(topic))).pub.ResumePublish(key)
}
