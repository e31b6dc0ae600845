package gcppubsub

import (
	"context"
	"sync"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/iterator"
)

// soleSubscription returns a function that reports whether the topic at
// path has at most one subscription, asking Pub/Sub at most once a second
// and keeping its last answer when asking fails. pstest counts a message's
// deliveries to every subscription of its topic together, so its count is
// used only while the topic has a single subscription.
func (b *broker) soleSubscription(path string) func() bool {
	var (
		mu    sync.Mutex
		asked time.Time
		sole  = true
	)
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(asked) < time.Second {
			return sole
		}
		asked = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		it := b.client.TopicAdminClient.ListTopicSubscriptions(ctx, &pb.ListTopicSubscriptionsRequest{Topic: path, PageSize: 2})
		n := 0
		for n < 2 {
			_, err := it.Next()
			if err == iterator.Done {
				break
			}
			if err != nil {
				return sole
			}
			n++
		}
		sole = n <= 1
		return sole
	}
}
