package gcppubsub

import (
	"os"
	"time"
)

// Emulators. When PUBSUB_EMULATOR_HOST is set at New, the client talks to
// that emulator (pstest, or Google's), and the broker works around what
// emulators do differently from Pub/Sub, here and nowhere else:
//
//   - pstest counts a message's deliveries to all subscriptions of its topic
//     together, and forwards a message to a subscription's dead-letter topic
//     on that shared count (with five groups or more, before every group got
//     it); so the broker sets no dead-letter policy on an emulator and counts
//     no Attempt from it (Attempt comes from what the broker carries in
//     hand-backs, and from retries made in the member);
//   - emulators apply no retry policy (a nacked message comes back at once);
//     so the broker sets none, and retries wait out their backoff in the
//     member, which emulators' lack of flow control makes harmless;
//   - emulators have no server-side flow control: pstest pushes a group's
//     backlog to a member whatever its window, and what the client does not
//     read is lost when the member closes, until its ack deadline passes; so
//     a member takes up to emulatorWindow messages, and Close hands them all
//     back; the message being pushed when a stream closes is lost to the
//     member until its stream ack deadline, which is emulatorStreamDeadline
//     (the client extends what it reads at once, by the usual 10s or more).
//
// The broker makes no emulator-only call.

// emulatorHost is the environment variable that names an emulator.
const emulatorHost = "PUBSUB_EMULATOR_HOST"

// onEmulator reports whether the client the broker makes talks to an
// emulator (the client reads the same variable).
func onEmulator() bool { return os.Getenv(emulatorHost) != "" }

// emulated returns the policies to set on a group's subscription: none on
// an emulator.
func (b *broker) emulated(p subPolicies) subPolicies {
	if b.emulator {
		return subPolicies{}
	}
	return p
}

// trusted returns what of st the broker may rely on: on an emulator neither
// Pub/Sub's count nor its retry policy.
func (b *broker) trusted(st subState) subState {
	if b.emulator {
		st.counts, st.delays = false, false
	}
	return st
}

// emulatorWindow is how many messages a member takes from an emulator (the
// client's default), when its concurrency asks for fewer.
const emulatorWindow = 1000

// window returns how many messages a member may hold: twice its handlers
// (Pub/Sub's flow control), or emulatorWindow from an emulator.
func (b *broker) window(concurrency int) int {
	if b.emulator {
		return max(2*concurrency, emulatorWindow)
	}
	return 2 * concurrency
}

// emulatorStreamDeadline is the ack deadline of what an emulator sends on a
// stream until the client extends it.
const emulatorStreamDeadline = 2 * time.Second

// streamDeadline returns the ack deadline of what Pub/Sub sends on a stream
// until the client extends it: Config.AckDeadline, or
// emulatorStreamDeadline on an emulator.
func (b *broker) streamDeadline() time.Duration {
	if b.emulator {
		return emulatorStreamDeadline
	}
	return b.cfg.AckDeadline
}
