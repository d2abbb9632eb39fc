package pubsub

import (
	"encoding/binary"
	"errors"
)

// A message is stored in its topic's stream as one payload:
//
//	version byte (1)
//	uvarint len, ordering key
//	uvarint count, then count × (uvarint len, key, uvarint len, value)
//	data (the rest)
//
// Attributes travel in the payload, not as NATS headers: Google allows
// keys and values that headers cannot carry (colons, newlines, case that
// must survive), and the payload is binary so a 10 MB message is not
// inflated by base64. The format is part of the on-disk format.
const envelopeV1 = 1

// envelopeOverhead bounds what the envelope adds to a message's size.
const envelopeOverhead = 1 + binary.MaxVarintLen64*(2+2*MaxAttributes)

var errEnvelope = errors.New("pubsub: malformed stored message")

func encodeEnvelope(m *Message) []byte {
	n := 1 + binary.MaxVarintLen64*(2+2*len(m.Attributes)) + messageSize(m)
	b := make([]byte, 0, n)
	b = append(b, envelopeV1)
	b = binary.AppendUvarint(b, uint64(len(m.OrderingKey)))
	b = append(b, m.OrderingKey...)
	b = binary.AppendUvarint(b, uint64(len(m.Attributes)))
	for k, v := range m.Attributes {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return append(b, m.Data...)
}

// decodeEnvelope fills m's data, attributes and ordering key. Data
// aliases p.
func decodeEnvelope(p []byte, m *Message) error {
	if len(p) == 0 || p[0] != envelopeV1 {
		return errEnvelope
	}
	p = p[1:]
	str := func() (string, bool) {
		n, w := binary.Uvarint(p)
		if w <= 0 || n > uint64(len(p)-w) {
			return "", false
		}
		s := string(p[w : w+int(n)])
		p = p[w+int(n):]
		return s, true
	}
	key, ok := str()
	if !ok {
		return errEnvelope
	}
	count, w := binary.Uvarint(p)
	if w <= 0 || count > MaxAttributes*2 {
		return errEnvelope
	}
	p = p[w:]
	var attrs map[string]string
	if count > 0 {
		attrs = make(map[string]string, count)
	}
	for range count {
		k, ok := str()
		if !ok {
			return errEnvelope
		}
		v, ok := str()
		if !ok {
			return errEnvelope
		}
		attrs[k] = v
	}
	m.OrderingKey, m.Attributes = key, attrs
	if len(p) > 0 {
		m.Data = p
	} else {
		m.Data = nil
	}
	return nil
}
