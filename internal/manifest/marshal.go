package manifest

import (
	"bytes"
	"strings"

	"github.com/duct-dev/duct"
	"go.yaml.in/yaml/v3"
)

// doc is a Manifest's YAML shape. Every field is a pointer so that a
// given empty list or map (`secrets: []`) is written out, not dropped.
type doc struct {
	Name         *string            `yaml:"name,omitempty"`
	Runtime      *duct.Runtime      `yaml:"runtime,omitempty"`
	Signature    *duct.Signature    `yaml:"signature,omitempty"`
	Handler      *string            `yaml:"handler,omitempty"`
	Entry        *string            `yaml:"entry,omitempty"`
	Command      *[]string          `yaml:"command,omitempty,flow"`
	Timeout      *duration          `yaml:"timeout,omitempty"`
	Memory       *duct.ByteSize     `yaml:"memory,omitempty"`
	Concurrency  *int               `yaml:"concurrency,omitempty"`
	MinInstances *int               `yaml:"minInstances,omitempty"`
	MaxInstances *int               `yaml:"maxInstances,omitempty"`
	IdleTimeout  *duration          `yaml:"idleTimeout,omitempty"`
	Env          *map[string]string `yaml:"env,omitempty"`
	Secrets      *[]string          `yaml:"secrets,omitempty,flow"`
	Invoke       *duct.InvokeMode   `yaml:"invoke,omitempty"`
	Network      *duct.NetworkMode  `yaml:"network,omitempty"`
	Triggers     *[]duct.Trigger    `yaml:"triggers,omitempty"`
	Retry        *retryDoc          `yaml:"retry,omitempty"`
}

type retryDoc struct {
	Attempts    *int      `yaml:"attempts,omitempty"`
	MaxEventAge *duration `yaml:"maxEventAge,omitempty"`
	OnFailure   *string   `yaml:"onFailure,omitempty"`
	OnSuccess   *string   `yaml:"onSuccess,omitempty"`
}

// Marshal writes the manifest as duct.yaml, fields in the documented
// order, only those given. Parse reads it back to an equal Manifest.
func (m *Manifest) Marshal() ([]byte, error) {
	d := doc{
		Name: m.Name, Runtime: m.Runtime, Signature: m.Signature, Handler: m.Handler, Entry: m.Entry,
		Timeout: short(m.Timeout), Memory: m.Memory, Concurrency: m.Concurrency,
		MinInstances: m.MinInstances, MaxInstances: m.MaxInstances, IdleTimeout: short(m.IdleTimeout),
		Invoke: m.Invoke, Network: m.Network,
	}
	if m.Command != nil {
		d.Command = &m.Command
	}
	if m.Env != nil {
		d.Env = &m.Env
	}
	if m.Secrets != nil {
		d.Secrets = &m.Secrets
	}
	if m.Triggers != nil {
		d.Triggers = &m.Triggers
	}
	if r := m.Retry; r != nil {
		d.Retry = &retryDoc{r.Attempts, short(r.MaxEventAge), r.OnFailure, r.OnSuccess}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&d); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	if bytes.Equal(buf.Bytes(), []byte("{}\n")) {
		return nil, nil
	}
	return buf.Bytes(), nil
}

// duration writes a duct.Duration as people write it: "5m", not "5m0s".
type duration duct.Duration

func short(d *duct.Duration) *duration { return (*duration)(d) }

func (d duration) MarshalText() ([]byte, error) {
	s := duct.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return []byte(s), nil
}
