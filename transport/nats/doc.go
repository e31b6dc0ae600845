// Package nats is Switchyard's NATS JetStream transport.
package nats
