package pubsub

import (
	"encoding/base64"
	"encoding/binary"
	"strconv"

	"github.com/duct-dev/duct"
)

// An ack id names one delivery of one message to one subscription and
// carries all a node needs to settle it, whichever node delivered it:
//
//	version byte (1)
//	uvarint: the subscription's incarnation (random, fixed at creation)
//	uvarint: the consumer generation (bumped by Seek)
//	uvarint: stream sequence, consumer (delivery) sequence, delivery count
//
// base64url without padding. With the subscription's stream and consumer
// names it rebuilds the JetStream ack subject
// ($JS.ACK.<stream>.<consumer>.<count>.<sseq>.<dseq>.0.0), so an ack or a
// deadline change goes straight to JetStream even when the lease lives on
// another node or was lost with a crashed one. An ack id of another
// subscription, of an earlier incarnation of this one, or from before a
// seek does not match and is ignored.
type ackID struct {
	inc   uint64 // subscription incarnation
	gen   uint64 // consumer generation
	sseq  uint64 // stream sequence: the message
	dseq  uint64 // consumer sequence: the delivery
	count uint64 // delivery count, from 1
}

const ackIDV1 = 1

func (a ackID) String() string {
	var buf [1 + 5*binary.MaxVarintLen64]byte
	b := append(buf[:0], ackIDV1)
	b = binary.AppendUvarint(b, a.inc)
	b = binary.AppendUvarint(b, a.gen)
	b = binary.AppendUvarint(b, a.sseq)
	b = binary.AppendUvarint(b, a.dseq)
	b = binary.AppendUvarint(b, a.count)
	return base64.RawURLEncoding.EncodeToString(b)
}

// maxAckIDLen bounds what parseAckID decodes.
const maxAckIDLen = 64

func parseAckID(s string) (ackID, error) {
	bad := func() (ackID, error) {
		return ackID{}, duct.Invalid("ack id", "%q is not an ack id of this server", truncate(s, 40))
	}
	if len(s) == 0 || len(s) > maxAckIDLen {
		return bad()
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 1 || b[0] != ackIDV1 {
		return bad()
	}
	b = b[1:]
	var v [5]uint64
	for i := range v {
		n, w := binary.Uvarint(b)
		if w <= 0 {
			return bad()
		}
		v[i], b = n, b[w:]
	}
	if len(b) != 0 || v[2] == 0 || v[3] == 0 || v[4] == 0 {
		return bad()
	}
	return ackID{inc: v[0], gen: v[1], sseq: v[2], dseq: v[3], count: v[4]}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ackSubject is the JetStream subject that settles delivery a of a
// message on consumer prefix ("$JS.ACK.<stream>.<consumer>.").
func ackSubject(prefix string, a ackID) string {
	b := make([]byte, 0, len(prefix)+3*20+6)
	b = append(b, prefix...)
	b = strconv.AppendUint(b, a.count, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, a.sseq, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, a.dseq, 10)
	b = append(b, ".0.0"...)
	return string(b)
}
