package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Result is one load run.
type Result struct {
	Requests int           `json:"requests"`
	Errors   int           `json:"errors"`
	Duration time.Duration `json:"duration"`
	RPS      float64       `json:"rps"`
	P50      time.Duration `json:"p50"`
	P99      time.Duration `json:"p99"`
}

// Load sends keep-alive GETs to url from conns connections for d and
// measures throughput and latency. It is a small, allocation-light
// generator: each connection writes one fixed request and parses just
// enough of the response to find its end.
func Load(ctx context.Context, rawURL string, conns int, d time.Duration) (Result, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Result{}, err
	}
	path := u.RequestURI()
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUser-Agent: duct-bench\r\n\r\n")
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex // guards lat, res
		lat []time.Duration
		res Result
	)
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, n, e := worker(ctx, u.Host, req)
			mu.Lock()
			lat = append(lat, l...)
			res.Requests += n
			res.Errors += e
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Duration = time.Since(start)
	res.RPS = float64(res.Requests) / res.Duration.Seconds()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.P50, res.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	if res.Requests == 0 {
		return res, fmt.Errorf("no request succeeded (%d errors)", res.Errors)
	}
	return res, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

func worker(ctx context.Context, host string, req []byte) (lat []time.Duration, ok, failed int) {
	lat = make([]time.Duration, 0, 1<<14)
	var c net.Conn
	var br *bufio.Reader
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	deadline, _ := ctx.Deadline()
	for ctx.Err() == nil {
		if c == nil {
			var err error
			c, err = net.DialTimeout("tcp", host, 5*time.Second)
			if err != nil {
				failed++
				time.Sleep(10 * time.Millisecond)
				continue
			}
			c.SetDeadline(deadline.Add(5 * time.Second))
			br = bufio.NewReaderSize(c, 32<<10)
		}
		t0 := time.Now()
		if _, err := c.Write(req); err != nil {
			c.Close()
			c = nil
			failed++
			continue
		}
		status, keep, err := readResponse(br)
		if err != nil {
			c.Close()
			c = nil
			if ctx.Err() == nil {
				failed++
			}
			continue
		}
		lat = append(lat, time.Since(t0))
		if status == 200 {
			ok++
		} else {
			failed++
		}
		if !keep {
			c.Close()
			c = nil
		}
	}
	return lat, ok, failed
}

var errMalformed = errors.New("malformed response")

// readResponse reads one response; it understands Content-Length, chunked
// and connection-close framing.
func readResponse(br *bufio.Reader) (status int, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, errMalformed
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, errMalformed
	}
	keep = true
	length, chunked := -1, false
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		if len(h) <= 2 {
			break
		}
		k, v, _ := bytes.Cut(bytes.TrimRight(h, "\r\n"), []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			length, err = strconv.Atoi(string(v))
			if err != nil {
				return 0, false, errMalformed
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			keep = !bytes.EqualFold(v, []byte("close"))
		}
	}
	switch {
	case chunked:
		_, err = io.Copy(io.Discard, newChunkedReader(br))
	case length >= 0:
		_, err = br.Discard(length)
	default:
		_, err = io.Copy(io.Discard, br)
		keep = false
	}
	return status, keep, err
}
