package events_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/events"
)

// TestParseNamespace: PUBSUB_NAMESPACE=x makes topics "x.user.activity":
// a separator is added when missing; bad namespaces are refused.
func TestParseNamespace(t *testing.T) {
	for in, want := range map[string]string{"": "user.activity", "x": "x.user.activity", "x.": "x.user.activity", "team-a-": "team-a-user.activity", "t_": "t_user.activity"} {
		ns, err := events.ParseNamespace(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, ns.UserActivity().Name(), in)
	}
	for _, bad := range []string{"a b", "x/y", "ä", string(make([]byte, 65))} {
		_, err := events.ParseNamespace(bad)
		assert.Error(t, err, bad)
	}
}
