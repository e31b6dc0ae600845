package pubsub_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/switchyard-go/switchyard/pubsub"
)

func TestValidateNames(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"orders", true},
		{"user.activity", true},
		{"A-b_c.9", true},
		{strings.Repeat("x", 200), true},
		{"", false},
		{strings.Repeat("x", 201), false},
		{"has space", false},
		{"a/b", false},
		{"a*", false},
		{"caf\u00e9", false},
		{"tab\t", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topicErr, groupErr := pubsub.ValidateTopic(tc.name), pubsub.ValidateGroup(tc.name)
			if tc.ok {
				assert.NoError(t, topicErr)
				assert.NoError(t, groupErr)
				return
			}
			assert.ErrorIs(t, topicErr, pubsub.ErrInvalidTopic)
			assert.NotErrorIs(t, topicErr, pubsub.ErrInvalidGroup)
			assert.ErrorIs(t, groupErr, pubsub.ErrInvalidGroup)
		})
	}
	assert.EqualError(t, pubsub.ValidateTopic("a b"), `pubsub: invalid topic name: "a b" has ' ' at byte 1 (allowed: letters, digits, '.', '_', '-')`)
	assert.EqualError(t, pubsub.ValidateGroup(""), "pubsub: invalid group name: empty")
}
