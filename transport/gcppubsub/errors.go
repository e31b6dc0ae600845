package gcppubsub

import (
	"context"
	"fmt"
	"slices"
)

// The package has no sentinel errors of its own. Validation errors wrap
// pubsub.ErrInvalidTopic, pubsub.ErrInvalidGroup, pubsub.ErrInvalidMessage,
// pubsub.ErrMessageTooLarge or pubsub.ErrInvalidOption; messages of a paused
// ordering key wrap pubsub.ErrOrderingKeyPaused; admin calls on a group
// without a subscription wrap pubsub.ErrNotFound; calls after Close return
// pubsub.ErrClosed; errors from Pub/Sub keep their gRPC status (status.Code
// works on them) and are wrapped with the resource involved.

// wrapErr returns nil for a nil err, ctx's error unwrapped when ctx is done,
// and otherwise err wrapped with what was being done (naming the resources).
func wrapErr(ctx context.Context, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return fmt.Errorf("gcppubsub: "+format+": %w", append(slices.Clip(args), err)...)
}
