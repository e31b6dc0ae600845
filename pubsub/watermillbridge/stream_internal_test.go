package watermillbridge

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"

	"github.com/switchyard-go/switchyard/pubsub"
)

// takeBack keeps a verdict that watermill gave before it, and otherwise
// Nacks the message itself and hands it back.
func TestTakeBack(t *testing.T) {
	for _, tc := range []struct {
		name    string
		verdict func(*message.Message) bool // nil: none
		cerr    error
		want    error
	}{
		{name: "unsettled", want: pubsub.ErrClosed},
		{name: "unsettled, handler context ended", cerr: context.Canceled, want: context.Canceled},
		{name: "acked", verdict: (*message.Message).Ack},
		{name: "acked, handler context ended", verdict: (*message.Message).Ack, cerr: context.Canceled},
		{name: "nacked", verdict: (*message.Message).Nack, want: errNacked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wm := message.NewMessage("m", nil)
			if tc.verdict != nil {
				tc.verdict(wm)
			}
			err := takeBack(wm, tc.cerr)
			if tc.want == nil {
				assert.NoError(t, err)
				assert.True(t, wm.Ack(), "still acked")
				return
			}
			assert.ErrorIs(t, err, tc.want)
			assert.False(t, wm.Ack(), "an Ack after takeBack does not count")
		})
	}
}
