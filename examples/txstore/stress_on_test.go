//go:build stress

package txstore_test

// The size of TestOpenConcurrently with the build tag stress.
const openRounds, openProcesses = 12, 8
