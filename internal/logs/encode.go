package logs

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/duct-dev/duct"
)

// appendEntry appends e as one line of JSON, the same document
// encoding/json makes of a duct.LogEntry, without reflection: every
// invocation writes a report, so this runs as often as requests do.
func appendEntry(b []byte, e *duct.LogEntry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","function":`...)
	b = appendString(b, e.Function)
	if e.Version != 0 {
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, int64(e.Version), 10)
	}
	b = appendField(b, "instance", e.Instance)
	b = appendField(b, "invocation", e.Invocation)
	b = append(b, `,"stream":`...)
	b = appendString(b, string(e.Stream))
	b = appendField(b, "message", e.Message)
	if r := e.Report; r != nil {
		b = append(b, `,"report":{"invocation":`...)
		b = appendString(b, r.Invocation)
		b = append(b, `,"function":`...)
		b = appendString(b, r.Function)
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, int64(r.Version), 10)
		b = appendField(b, "instance", r.Instance)
		b = append(b, `,"start":"`...)
		b = r.Start.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
		b = appendInt(b, "duration", int64(r.Duration))
		b = appendInt(b, "billedDuration", int64(r.BilledDuration))
		b = append(b, `,"memorySize":"`...)
		b = append(b, r.MemorySize.String()...)
		b = append(b, `","maxMemoryUsed":"`...)
		b = append(b, r.MaxMemoryUsed.String()...)
		b = append(b, '"')
		if r.InitDuration != 0 {
			b = appendInt(b, "initDuration", int64(r.InitDuration))
		}
		if r.QueueWait != 0 {
			b = appendInt(b, "queueWait", int64(r.QueueWait))
		}
		b = appendInt(b, "status", int64(r.Status))
		b = append(b, `,"outcome":`...)
		b = appendString(b, string(r.Outcome))
		b = appendField(b, "error", r.Error)
		b = append(b, '}')
	}
	return append(b, '}', '\n')
}

func appendInt(b []byte, key string, v int64) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, v, 10)
}

// appendField appends ,"key":"value" unless value is empty (omitempty).
func appendField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD,
// as encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
