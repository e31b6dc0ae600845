//go:build !watermillamqp

package rabbitmq

import "testing"

// benchWatermill stands in for the watermill-amqp reference benchmark
// (bench_watermill_test.go) in builds without the watermillamqp tag.
func benchWatermill(b *testing.B, _ string, _ []byte) {
	b.Skip("watermill-amqp reference: run with -tags watermillamqp (needs watermill-amqp's dependencies in go.mod)")
}
