//go:build !stress

package txstore_test

// The size of TestOpenConcurrently without the build tag stress.
const openRounds, openProcesses = 3, 6
