package driver

import "log/slog"

// Env is what the portable layer gives a transport when it opens its
// driver (pubsub.NewClient).
type Env struct {
	// Logger is the application's logger (pubsub.WithLogger given to the
	// broker; slog.Default() otherwise). Drivers log their own events, such
	// as a lost and restored connection, to it and nowhere else. Never nil.
	Logger *slog.Logger
}
