// Package id makes identifiers for invocations and instances: unique across
// processes and restarts (a random per-process prefix) and cheap on the hot
// path (an atomic counter, no syscall).
package id

import (
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
)

var (
	prefix  [6]byte
	counter atomic.Uint64
)

func init() {
	if _, err := rand.Read(prefix[:]); err != nil {
		panic("id: no randomness: " + err.Error())
	}
	var seed [2]byte
	_, _ = rand.Read(seed[:])
	counter.Store(uint64(seed[0])<<8 | uint64(seed[1]))
}

// New returns a 28-character lowercase hex identifier.
func New() string {
	var b [14]byte
	copy(b[:6], prefix[:])
	n := counter.Add(1)
	for i := 13; i >= 6; i-- {
		b[i] = byte(n)
		n >>= 8
	}
	return hex.EncodeToString(b[:])
}

// Short returns a random 12-character hex identifier, for instances and
// other things people read.
func Short() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
