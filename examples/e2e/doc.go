// Package e2e holds the end-to-end tests of the example services: they run
// the services in-process, each on its own broker handle and HTTP listener
// as separate processes would be, over mem:// and over the real RabbitMQ
// (amqp://, skipped locally when RabbitMQ is down or the transport is not
// wired into transport.Open yet; failing under CI=true when it is down).
package e2e
