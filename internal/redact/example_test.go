package redact_test

import (
	"fmt"

	"github.com/switchyard-go/switchyard/internal/redact"
)

// URLs go into errors and logs with their password replaced.
func ExampleURL() {
	fmt.Println(redact.URL("amqp://alice:s3cret@rabbit:5672/prod"))
	// Output:
	// amqp://alice:xxxxx@rabbit:5672/prod
}
