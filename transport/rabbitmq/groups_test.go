package rabbitmq

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// TestListGroups: AMQP tells whether a topic exists, not its groups.
func TestListGroups(t *testing.T) {
	b := openTest(t, testURL(t, ""))
	ctx := testCtx(t)
	topic := uniqueTopic(t, "g")

	_, err := b.ListGroups(ctx, topic)
	require.ErrorIs(t, err, pubsub.ErrNotFound)
	assert.NotErrorIs(t, err, errors.ErrUnsupported)
	assert.Contains(t, err.Error(), `exchange "`+topic+`"`)

	require.NoError(t, b.CreateGroup(ctx, topic, "g"))
	got, err := b.ListGroups(ctx, topic)
	assert.Nil(t, got)
	require.ErrorIs(t, err, errors.ErrUnsupported)
	assert.NotErrorIs(t, err, pubsub.ErrNotFound)
	assert.Contains(t, err.Error(), "rabbitmqctl list_bindings")

	_, err = b.ListGroups(context.Background(), "amq.direct")
	assert.ErrorIs(t, err, pubsub.ErrInvalidTopic, "reserved names are refused before any I/O")
}
