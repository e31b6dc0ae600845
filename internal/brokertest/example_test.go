package brokertest_test

import (
	"testing"

	"github.com/switchyard-go/switchyard/internal/brokertest"
)

// A broker test asks for its broker's URL: locally an unreachable broker
// skips the test with a message saying how to start it; under CI=true it
// fails the test. (Compiled, not run: it needs a *testing.T.)
func ExampleAMQPURL() {
	testSomething := func(t *testing.T) {
		url := brokertest.AMQPURL(t)
		_ = url // open the broker with transport.Open(ctx, url)
	}
	_ = testSomething
}
