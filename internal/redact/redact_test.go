package redact

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestURL(t *testing.T) {
	assert.Equal(t, "amqp://guest:xxxxx@host:5672/", URL("amqp://guest:s3cret@host:5672/"))
	assert.Equal(t, "amqp://host/", URL("amqp://host/"))
	assert.Equal(t, "amqp://[unparsable URL]", URL("amqp://u:s3cret@host/%zz"))
	assert.Equal(t, "u:[redacted]", URL("u:s3cret@host/%zz"))
	assert.Equal(t, "u:[redacted]", URL("u:s3cret@host/x"))
	assert.Equal(t, "amqp:[redacted]", URL("amqp:guest:s3cret@host"))
}

func TestErr(t *testing.T) {
	base := errors.New("dial amqp://u:s3cret@host: refused")
	err := Err(fmt.Errorf("open: %w", base), "s3cret")
	assert.EqualError(t, err, "open: dial amqp://u:xxxxx@host: refused")
	assert.ErrorIs(t, err, base)
	assert.Same(t, base, Err(base, ""))
	assert.NoError(t, Err(nil, "x"))
	other := errors.New("no secret here")
	assert.Same(t, other, Err(other, "s3cret"))
}
