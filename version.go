package duct

import "time"

// Version is one immutable deployment of a function: the spec as deployed
// and the artifact built from its source. Versions are numbered from 1 per
// function; exactly one is active (serving) at a time.
type Version struct {
	Function string   `json:"function"`
	Number   int      `json:"number"`
	Spec     Function `json:"spec"`
	// SourceDigest and ArtifactDigest are "sha256:<hex>" of the source
	// tree and of the built artifact archive.
	SourceDigest string `json:"sourceDigest"`
	// SourceArchive is the digest of the stored source bundle (a
	// deterministic tar.gz of the tree), for rebuilds and downloads.
	SourceArchive  string `json:"sourceArchive,omitempty"`
	ArtifactDigest string `json:"artifactDigest"`
	ArtifactSize   int64  `json:"artifactSize"`
	// BuildKey identifies the build inputs (source, runtime, options,
	// toolchain); equal keys share one artifact.
	BuildKey string `json:"buildKey"`
	// Run says how to start an instance from the artifact.
	Run           RunSpec       `json:"run"`
	BuildLog      string        `json:"buildLog,omitempty"`
	BuildDuration time.Duration `json:"buildDuration"`
	Cached        bool          `json:"cached"` // artifact reused, nothing rebuilt
	CreatedAt     time.Time     `json:"createdAt"`
}

// FunctionState is a function as the control plane records it: which
// version serves, and the newest version number handed out.
type FunctionState struct {
	Name      string    `json:"name"`
	Active    int       `json:"active"`
	Latest    int       `json:"latest"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// FunctionInfo is what the API answers about one function.
type FunctionInfo struct {
	Name      string         `json:"name"`
	URL       string         `json:"url,omitempty"`
	Active    *Version       `json:"active,omitempty"`
	Latest    int            `json:"latest"`
	CreatedAt time.Time      `json:"createdAt"`
	UpdatedAt time.Time      `json:"updatedAt"`
	Instances []InstanceInfo `json:"instances,omitempty"`
}

// InstanceInfo describes one live instance of a function version.
type InstanceInfo struct {
	ID        string    `json:"id"`
	Version   int       `json:"version"`
	State     string    `json:"state"` // idle, busy, or "starting (N)" for N launches under way (ID empty)
	InFlight  int       `json:"inFlight"`
	StartedAt time.Time `json:"startedAt"`
	PID       int       `json:"pid,omitempty"`
	Served    int64     `json:"served"`
	MaxMemory int64     `json:"maxMemory,omitempty"`
}

// Protocol is how Duct talks to an instance while it starts.
type Protocol string

const (
	// ProtocolShim: Duct's language shims; a listening socket on fd 3 and a
	// control socket on fd 4 (docs/instance-contract.md).
	ProtocolShim Protocol = "shim"
	// ProtocolPort: any program that serves HTTP on $PORT; Duct polls the
	// port until it accepts connections.
	ProtocolPort Protocol = "port"
)

// RunSpec is what the builder found out about how to run an artifact.
type RunSpec struct {
	Protocol Protocol `json:"protocol"`
	// Command is argv, argv[0] relative to the artifact root; empty for
	// Node.js and Python shims, which Duct starts from its spare pool.
	Command []string `json:"command,omitempty"`
	// Entry is the source file the shim loads (Node.js, Python).
	Entry string `json:"entry,omitempty"`
}
