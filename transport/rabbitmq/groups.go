package rabbitmq

import (
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

var _ driver.GroupLister = (*broker)(nil)

// ListGroups implements driver.GroupLister as far as AMQP 0-9-1 allows,
// which is not far: the protocol can look up an exchange or a queue by
// name (a passive declare) but cannot list the queues bound to an
// exchange, so no group can be discovered. ListGroups looks the topic's
// exchange up on the admin connection and returns an error wrapping
// driver.ErrNotFound when it does not exist, and otherwise an error
// wrapping errors.ErrUnsupported that says how to list the groups with
// rabbitmqctl. It waits for the broker as CreateGroup does.
func (b *broker) ListGroups(ctx context.Context, topic string) ([]driver.GroupInfo, error) {
	x := exchangeName(topic)
	err := b.withTimeout(ctx, "look up topic "+topic, func(ctx context.Context) error {
		return b.adminDo(ctx, func(a *adminConn) error {
			ch, err := a.channel()
			if err != nil {
				return err
			}
			if err := ch.ExchangeDeclarePassive(x, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
				if isCode(err, amqp.NotFound) {
					return fmt.Errorf("rabbitmq: topic %s (exchange %q): %w", topic, x, driver.ErrNotFound)
				}
				return fmt.Errorf("rabbitmq: look up exchange %q: %w", x, err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("rabbitmq: AMQP cannot list the queues bound to exchange %q; its groups are the queues %q that `rabbitmqctl list_bindings source_name destination_name` shows bound to it: %w",
		x, x+nameSep+"GROUP", errors.ErrUnsupported)
}
