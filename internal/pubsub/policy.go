package pubsub

import (
	"net/url"
	"time"

	"github.com/duct-dev/duct"
)

// normTopic validates t and fills in defaults.
func normTopic(t Topic) (Topic, error) {
	if err := checkName("topic", t.Name); err != nil {
		return t, err
	}
	if t.Retention == 0 {
		t.Retention = DefaultRetention
	}
	if t.Retention < MinRetention || t.Retention > MaxRetention {
		return t, duct.Invalid("retention", "%s: want %s to %s", t.Retention, MinRetention, MaxRetention)
	}
	return t, checkLabels(t.Labels)
}

// normSub validates s and fills in defaults: what a subscription leaves
// out gets Google's default. The topics it names are checked by the
// caller.
func normSub(s Subscription) (Subscription, error) {
	if err := checkName("subscription", s.Name); err != nil {
		return s, err
	}
	if s.Topic != DeletedTopic {
		if err := checkName("topic", s.Topic); err != nil {
			return s, err
		}
	}
	if s.AckDeadline == 0 {
		s.AckDeadline = DefaultAckDeadline
	}
	if s.AckDeadline < MinAckDeadline || s.AckDeadline > MaxAckDeadline {
		return s, duct.Invalid("ack deadline", "%s: want %s to %s", s.AckDeadline, MinAckDeadline, MaxAckDeadline)
	}
	if r := s.Retry; r != nil {
		rp := *r
		if rp.MinBackoff == 0 {
			rp.MinBackoff = DefaultMinBackoff
		}
		if rp.MaxBackoff == 0 {
			rp.MaxBackoff = DefaultMaxBackoff
		}
		switch {
		case rp.MinBackoff < 0 || rp.MinBackoff > MaxRetryBackoff:
			return s, duct.Invalid("retry policy", "minimum backoff %s: want 0 to %s", rp.MinBackoff, MaxRetryBackoff)
		case rp.MaxBackoff < 0 || rp.MaxBackoff > MaxRetryBackoff:
			return s, duct.Invalid("retry policy", "maximum backoff %s: want 0 to %s", rp.MaxBackoff, MaxRetryBackoff)
		case rp.MinBackoff > rp.MaxBackoff:
			return s, duct.Invalid("retry policy", "minimum backoff %s is above the maximum %s", rp.MinBackoff, rp.MaxBackoff)
		}
		s.Retry = &rp
	}
	if d := s.DeadLetter; d != nil {
		dp := *d
		if dp.MaxAttempts == 0 {
			dp.MaxAttempts = DefaultDeadLetter
		}
		if err := checkName("dead-letter topic", dp.Topic); err != nil {
			return s, err
		}
		if dp.MaxAttempts < MinDeadLetterTries || dp.MaxAttempts > MaxDeadLetterTries {
			return s, duct.Invalid("dead-letter policy", "max delivery attempts %d: want %d to %d", dp.MaxAttempts, MinDeadLetterTries, MaxDeadLetterTries)
		}
		s.DeadLetter = &dp
	}
	if len(s.Filter) > MaxFilterLength {
		return s, duct.Invalid("filter", "%d bytes: at most %d", len(s.Filter), MaxFilterLength)
	}
	if _, err := ParseFilter(s.Filter); err != nil {
		return s, err
	}
	if p := s.Push; p != nil {
		if p.Endpoint == "" {
			s.Push = nil
		} else if err := checkEndpoint(p.Endpoint); err != nil {
			return s, err
		}
	}
	if s.Retention != 0 && (s.Retention < MinRetention || s.Retention > MaxSubscriptionRetention) {
		return s, duct.Invalid("message retention", "%s: want %s to %s", s.Retention, MinRetention, MaxSubscriptionRetention)
	}
	return s, checkLabels(s.Labels)
}

func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return duct.Invalid("push endpoint", "%q: want an absolute http or https URL", endpoint)
	}
	if u.User != nil {
		return duct.Invalid("push endpoint", "%q: credentials in the URL are not allowed", u.Redacted())
	}
	return nil
}

// Push retries when the subscription has no retry policy: Google backs
// off pushes exponentially from 100 ms to 60 s.
const (
	pushMinBackoff = 100 * time.Millisecond
	pushMaxBackoff = 60 * time.Second
)

// backoff is how long to wait before redelivering a message that failed
// its attempt-th delivery (1 for the first): min doubling per attempt up
// to max. Zero means at once.
func backoff(minB, maxB time.Duration, attempt int) time.Duration {
	if minB <= 0 {
		return 0
	}
	d := minB
	for i := 1; i < attempt && d < maxB; i++ {
		d *= 2
	}
	return min(d, maxB)
}

// retryDelay is the redelivery delay of a message of s that failed its
// attempt-th delivery.
func retryDelay(s *Subscription, attempt int) time.Duration {
	switch {
	case s.Retry != nil:
		return backoff(s.Retry.MinBackoff, s.Retry.MaxBackoff, attempt)
	case s.Push != nil:
		return backoff(pushMinBackoff, pushMaxBackoff, attempt)
	}
	return 0
}

// sameImmutable reports why an update of cur to want is refused: the
// topic, the filter and ordering are fixed at creation, as with Google.
func sameImmutable(cur, want Subscription) error {
	switch {
	case want.Topic != "" && want.Topic != cur.Topic:
		return duct.Invalid("topic", "a subscription's topic cannot change (%q to %q)", cur.Topic, want.Topic)
	case want.Filter != cur.Filter:
		return duct.Invalid("filter", "a subscription's filter cannot change")
	case want.Ordering != cur.Ordering:
		return duct.Invalid("enableMessageOrdering", "message ordering cannot be switched after creation")
	}
	return nil
}
