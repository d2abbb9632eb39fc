package instance

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/duct-dev/duct"
)

// maxLine bounds one log line; longer output is split.
const maxLine = 16 << 10

// tailLines is how many recent lines an instance keeps for error
// messages (why did it fail to start?).
const tailLines = 20

// logPump reads an instance's stdout and stderr and emits one LogEntry per
// line. Reads and line handling happen under mu, so end() can drain what
// the pipes hold at that moment and tag it with the invocation that wrote
// it: a shim writes its output synchronously before answering, so by the
// time a response is complete its lines are in the pipe.
type logPump struct {
	sink     duct.LogSink
	function string
	version  int
	instance string

	mu         sync.Mutex // guards everything below
	invocation string
	partial    [2][]byte // unterminated output per stream
	tail       []string  // last lines, for start-up errors
	files      [2]*os.File
	closed     [2]bool
}

var streams = [2]duct.LogStream{duct.LogStdout, duct.LogStderr}

func newLogPump(sink duct.LogSink, stdout, stderr *os.File) *logPump {
	return &logPump{sink: sink, files: [2]*os.File{stdout, stderr}}
}

// start runs one reader goroutine per stream until the pipe closes.
func (p *logPump) start() {
	for i := range p.files {
		go p.run(i)
	}
}

// identify names the instance the lines belong to.
func (p *logPump) identify(function string, version int, instance string) {
	p.mu.Lock()
	p.function, p.version, p.instance = function, version, instance
	p.mu.Unlock()
}

func (p *logPump) run(i int) {
	f := p.files[i]
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 32<<10)
	for {
		var eof bool
		err := rc.Read(func(fd uintptr) bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.closed[i] {
				eof = true
				return true
			}
			n, err := syscall.Read(int(fd), buf)
			if errors.Is(err, syscall.EAGAIN) {
				return false // wait until readable
			}
			if n <= 0 {
				eof = true
				p.flushLocked(i)
				p.closed[i] = true
				return true
			}
			p.consumeLocked(i, buf[:n])
			return true
		})
		if err != nil || eof {
			f.Close()
			return
		}
	}
}

// drainLocked reads whatever the pipes hold now without blocking.
func (p *logPump) drainLocked() {
	var buf [8 << 10]byte
	for i, f := range p.files {
		if p.closed[i] {
			continue
		}
		rc, err := f.SyscallConn()
		if err != nil {
			continue
		}
		_ = rc.Control(func(fd uintptr) {
			for {
				n, err := syscall.Read(int(fd), buf[:])
				if n <= 0 || err != nil {
					return
				}
				p.consumeLocked(i, buf[:n])
			}
		})
		p.flushLocked(i)
	}
}

func (p *logPump) consumeLocked(i int, b []byte) {
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			p.partial[i] = append(p.partial[i], b...)
			if len(p.partial[i]) >= maxLine {
				p.flushLocked(i)
			}
			return
		}
		line := b[:nl]
		b = b[nl+1:]
		if len(p.partial[i]) > 0 {
			line = append(p.partial[i], line...)
			p.partial[i] = p.partial[i][:0]
		}
		for len(line) > maxLine {
			p.emitLocked(i, line[:maxLine])
			line = line[maxLine:]
		}
		p.emitLocked(i, line)
	}
}

func (p *logPump) flushLocked(i int) {
	if len(p.partial[i]) > 0 {
		p.emitLocked(i, p.partial[i])
		p.partial[i] = p.partial[i][:0]
	}
}

func (p *logPump) emitLocked(i int, line []byte) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	msg := string(line)
	if len(p.tail) == tailLines {
		copy(p.tail, p.tail[1:])
		p.tail = p.tail[:tailLines-1]
	}
	p.tail = append(p.tail, msg)
	if p.sink == nil {
		return
	}
	p.sink.Log(duct.LogEntry{
		Time:       time.Now(),
		Function:   p.function,
		Version:    p.version,
		Instance:   p.instance,
		Invocation: p.invocation,
		Stream:     streams[i],
		Message:    msg,
	})
}

func (p *logPump) begin(invocation string) {
	p.mu.Lock()
	p.invocation = invocation
	p.mu.Unlock()
}

func (p *logPump) end() {
	p.mu.Lock()
	p.drainLocked()
	p.invocation = ""
	p.mu.Unlock()
}

// recent returns the last lines the instance wrote, oldest first.
func (p *logPump) recent() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drainLocked()
	return append([]string(nil), p.tail...)
}

// platform records a line from Duct itself about the instance.
func (p *logPump) platform(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sink == nil {
		return
	}
	p.sink.Log(duct.LogEntry{
		Time:     time.Now(),
		Function: p.function,
		Version:  p.version,
		Instance: p.instance,
		Stream:   duct.LogPlatform,
		Message:  msg,
	})
}
