package trigger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/duct-dev/duct"
)

// TypeScheduleTick is the CloudEvent type of a schedule trigger's ticks.
const TypeScheduleTick = "com.duct.schedule.tick"

// tickData is the data of a tick's event.
type tickData struct {
	Schedule string `json:"schedule"`
	Timezone string `json:"timezone"`
	// ScheduledTime is the tick, in the schedule's time zone; FiredTime
	// when it was fired (later when it was caught up after a restart).
	ScheduledTime time.Time `json:"scheduledTime"`
	FiredTime     time.Time `json:"firedTime"`
}

// tickSource is the CloudEvent source of a schedule trigger's ticks.
func tickSource(fn, trigger string) string { return "//duct/functions/" + fn + "/triggers/" + trigger }

// fire queues a tick as an asynchronous invocation of its function. Its
// idempotency key and invocation id are the tick's own, so a tick fired
// again (its first claim was not confirmed) is queued once.
func (m *Manager) fire(ctx context.Context, t Tick) (string, error) {
	tz := t.Spec.Timezone
	if tz == "" {
		tz = "UTC"
	}
	loc, _ := duct.ScheduleLocation(t.Spec.Timezone)
	data, _ := json.Marshal(tickData{Schedule: t.Spec.Cron, Timezone: tz, ScheduledTime: t.Time.In(loc),
		FiredTime: m.cfg.Clock.Now().In(loc)})
	ev := duct.CloudEvent{
		SpecVersion: duct.CloudEventsVersion, ID: t.Time.UTC().Format(time.RFC3339), Source: tickSource(t.Function, t.Trigger),
		Type: TypeScheduleTick, Time: t.Time, DataContentType: "application/json", Data: data,
	}
	key := "schedule:" + t.Trigger + ":" + strconv.FormatInt(t.Time.Unix(), 10)
	inv := eventInvocation(t.Function, &ev, 1, key)
	sum := sha256.Sum256([]byte(t.Function + "\n" + key))
	inv.ID = hex.EncodeToString(sum[:14])
	return m.submit(ctx, inv)
}
