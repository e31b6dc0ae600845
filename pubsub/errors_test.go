package pubsub_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/switchyard-go/switchyard/pubsub"
)

func TestPermanent(t *testing.T) {
	base := errors.New("bad input")
	p := pubsub.Permanent(base)
	assert.True(t, pubsub.IsPermanent(p))
	assert.ErrorIs(t, p, base)
	assert.Equal(t, "bad input", p.Error())
	assert.True(t, pubsub.IsPermanent(errors.Join(errors.New("ctx"), p)), "wrapped")
	assert.False(t, pubsub.IsPermanent(base))
	assert.NoError(t, pubsub.Permanent(nil))
}
