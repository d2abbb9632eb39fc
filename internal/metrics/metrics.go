// Package metrics defines Duct's Prometheus metrics and hands out
// per-function handles, resolved once so the hot path does no label
// lookups.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/duct-dev/duct"
)

// Registry holds every metric Duct exports.
type Registry struct {
	reg *prometheus.Registry

	invocations *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	coldStarts  *prometheus.CounterVec
	initDur     *prometheus.HistogramVec
	instances   *prometheus.GaugeVec
	queueWait   *prometheus.HistogramVec
	logsDropped prometheus.Counter
}

// latencyBuckets span 100µs to 60s.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// New creates a registry with Duct's metrics and the Go runtime's.
func New() *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	r.invocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "duct_invocations_total",
		Help: "Invocations by function and outcome (success, error, timeout, crash, memory, throttled, init_failed, canceled, loop).",
	}, []string{"function", "outcome"})
	r.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "duct_invocation_duration_seconds",
		Help:    "Time from the request's arrival to the end of the response: queueing and cold starts included.",
		Buckets: latencyBuckets,
	}, []string{"function"})
	r.coldStarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "duct_cold_starts_total",
		Help: "Instances started for a waiting request or for minimum instances.",
	}, []string{"function"})
	r.initDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "duct_init_duration_seconds",
		Help:    "Time from launching an instance to it being ready to serve.",
		Buckets: latencyBuckets,
	}, []string{"function"})
	r.instances = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "duct_instances",
		Help: "Live instances (starting or ready).",
	}, []string{"function"})
	r.queueWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "duct_queue_wait_seconds",
		Help:    "Time requests waited for a free instance slot.",
		Buckets: latencyBuckets,
	}, []string{"function"})
	r.logsDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "duct_log_entries_dropped_total",
		Help: "Log entries dropped because the log writer could not keep up.",
	})
	r.reg.MustRegister(r.invocations, r.duration, r.coldStarts, r.initDur, r.instances, r.queueWait, r.logsDropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves the metrics in Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// LogsDropped counts dropped log entries.
func (r *Registry) LogsDropped() prometheus.Counter { return r.logsDropped }

// Function is one function's metric handles.
type Function struct {
	outcomes   map[duct.Outcome]prometheus.Counter
	Duration   prometheus.Observer
	ColdStarts prometheus.Counter
	Init       prometheus.Observer
	Instances  prometheus.Gauge
	QueueWait  prometheus.Observer
}

// For returns the handles for function name. Nil-safe: a nil Registry
// returns handles that record nothing.
func (r *Registry) For(name string) *Function {
	if r == nil {
		r = discard
	}
	f := &Function{
		outcomes:   map[duct.Outcome]prometheus.Counter{},
		Duration:   r.duration.WithLabelValues(name),
		ColdStarts: r.coldStarts.WithLabelValues(name),
		Init:       r.initDur.WithLabelValues(name),
		Instances:  r.instances.WithLabelValues(name),
		QueueWait:  r.queueWait.WithLabelValues(name),
	}
	for _, o := range []duct.Outcome{duct.OutcomeSuccess, duct.OutcomeError, duct.OutcomeTimeout, duct.OutcomeCrash, duct.OutcomeMemory,
		duct.OutcomeThrottled, duct.OutcomeInitFailed, duct.OutcomeCanceled, duct.OutcomeLoop} {
		f.outcomes[o] = r.invocations.WithLabelValues(name, string(o))
	}
	return f
}

// Forget drops a deleted function's series.
func (r *Registry) Forget(name string) {
	if r == nil {
		return
	}
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{r.invocations, r.duration, r.coldStarts, r.initDur, r.instances, r.queueWait} {
		v.DeletePartialMatch(prometheus.Labels{"function": name})
	}
}

// Invocation counts one finished invocation.
func (f *Function) Invocation(o duct.Outcome) {
	if c := f.outcomes[o]; c != nil {
		c.Inc()
	}
}

var discard = New()
