package manifest

import (
	"maps"
	"slices"
	"strings"

	"github.com/duct-dev/duct"
	"go.yaml.in/yaml/v3"
)

// triggerKinds are the keys a trigger may have; exactly one per trigger.
var triggerKinds = []string{"http", "topic", "schedule", "bucket", "kv", "event"}

// triggers reads the triggers list; it is empty, not nil, for [].
func (d *decoder) triggers(n *yaml.Node, path string) ([]duct.Trigger, error) {
	if err := d.want(n, path, yaml.SequenceNode, "a list of triggers"); err != nil {
		return nil, err
	}
	out := make([]duct.Trigger, 0, len(n.Content))
	for i, item := range n.Content {
		p := index(path, i)
		if isNull(item) {
			return nil, errAt(item.Line, p, "empty trigger: want one of %s", joinList(triggerKinds))
		}
		fields, err := d.mapping(item, p, triggerKinds)
		if err != nil {
			return nil, err
		}
		if len(fields) != 1 {
			var got []string
			for _, f := range fields {
				got = append(got, f.key)
			}
			return nil, errAt(item.Line, p, "want exactly one of %s, got %d (%s)", joinList(triggerKinds), len(fields), joinList(got))
		}
		d.lines[p] = item.Line
		t, err := d.trigger(fields[0], p)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func (d *decoder) trigger(f field, path string) (duct.Trigger, error) {
	var t duct.Trigger
	p := join(path, f.key)
	var strs map[string]*string
	var lists map[string]*[]string
	switch f.key {
	case "http":
		t.HTTP = &duct.HTTPTrigger{}
		strs = map[string]*string{"path": &t.HTTP.Path}
		lists = map[string]*[]string{"methods": &t.HTTP.Methods}
	case "topic":
		t.Topic = &duct.TopicTrigger{}
		strs = map[string]*string{"name": &t.Topic.Name, "filter": &t.Topic.Filter}
	case "schedule":
		t.Schedule = &duct.ScheduleTrigger{}
		strs = map[string]*string{"cron": &t.Schedule.Cron, "timezone": &t.Schedule.Timezone}
	case "bucket":
		t.Bucket = &duct.BucketTrigger{}
		strs = map[string]*string{"name": &t.Bucket.Name}
		lists = map[string]*[]string{"events": &t.Bucket.Events}
	case "kv":
		t.KV = &duct.KVTrigger{}
		strs = map[string]*string{"bucket": &t.KV.Bucket, "key": &t.KV.Key}
	case "event":
		t.Event = &duct.EventTrigger{}
		strs = map[string]*string{"type": &t.Event.Type, "source": &t.Event.Source}
	}
	known := slices.Sorted(maps.Keys(strs))
	known = append(known, slices.Sorted(maps.Keys(lists))...)
	fields, err := d.mapping(f.val, p, known)
	if err != nil {
		return t, err
	}
	for _, f := range fields {
		fp := join(p, f.key)
		if dst, ok := strs[f.key]; ok {
			s, err := d.str(f.val, fp)
			if err != nil {
				return t, err
			}
			*dst = *s
			continue
		}
		l, err := d.list(f.val, fp)
		if err != nil {
			return t, err
		}
		if len(l) > 0 { // [] and absent mean the same: any
			*lists[f.key] = l
		}
	}
	return t, nil
}

func joinList(s []string) string { return strings.Join(s, ", ") }
