package trigger_test

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duct-dev/duct/internal/ducttest"
)

// latencyFn answers how long ago its message was published: from the
// publisher's clock before the publish call (attribute t0), and from the
// publish time the broker stamped. Both measure to the handler's first
// line, on the same machine's clock.
var latencyFn = ducttest.Files{"fn.go": `package function

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

func Handle(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	var ev struct {
		Message struct {
			Attributes  map[string]string ` + "`json:\"attributes\"`" + `
			PublishTime time.Time         ` + "`json:\"publishTime\"`" + `
		} ` + "`json:\"message\"`" + `
	}
	json.NewDecoder(r.Body).Decode(&ev)
	t0, _ := strconv.ParseInt(ev.Message.Attributes["t0"], 10, 64)
	fmt.Fprintf(w, "%d %d", now.UnixNano()-t0, now.Sub(ev.Message.PublishTime).Nanoseconds())
}
`}

// BenchmarkTopicTriggerLatency measures publish-to-function-start for a
// topic trigger whose function has a warm instance: one message at a
// time, published through the REST API (fsynced before it is
// acknowledged, as always), delivered by the trigger's dispatcher to the
// Go function. It reports the p50 and p99 from before the publish call
// (publish-*) and from the broker's publish time (stored-*). Run with a
// fixed count: go test -run X -bench TopicTriggerLatency -benchtime 1000x
func BenchmarkTopicTriggerLatency(b *testing.B) {
	s := ducttest.Start(b)
	got := make(chan [2]time.Duration, 1)
	s.Triggers().Observe(func(status int, body []byte) {
		var a, c int64
		if _, err := fmt.Sscanf(string(body), "%d %d", &a, &c); err != nil || status != 200 {
			b.Errorf("function answered %d %q", status, body)
		}
		got <- [2]time.Duration{time.Duration(a), time.Duration(c)}
	})
	s.Deploy("latency", latencyFn, "runtime: go\ntriggers:\n  - topic: {name: latency}")
	publish := func() {
		t0 := strconv.FormatInt(time.Now().UnixNano(), 10)
		body := `{"messages":[{"data":"` + base64.StdEncoding.EncodeToString([]byte("ping")) + `","attributes":{"t0":"` + t0 + `"}}]}`
		if r := s.Do("POST", "/api/v1/topics/latency/publish", strings.NewReader(body), "Content-Type", "application/json"); r.Status != 200 {
			b.Fatalf("publish: %d %s", r.Status, r.Body)
		}
	}
	for range 20 { // warm the instance, the connections and the broker
		publish()
		<-got
	}
	pub := make([]time.Duration, 0, b.N)
	stored := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		publish()
		select {
		case d := <-got:
			pub, stored = append(pub, d[0]), append(stored, d[1])
		case <-time.After(10 * time.Second):
			b.Fatal("no delivery within 10s")
		}
	}
	b.StopTimer()
	report := func(name string, ds []time.Duration) {
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2])/1e6, name+"-p50-ms")
		b.ReportMetric(float64(ds[len(ds)*99/100])/1e6, name+"-p99-ms")
	}
	report("publish", pub)
	report("stored", stored)
}
