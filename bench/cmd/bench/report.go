package main

import (
	"bufio"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/template"
	"time"

	"github.com/slipwayci/slipway/bench/internal/benchkit"
)

// machine is where and when the run happened.
type machine struct {
	CPU, Memory, GoVersion string
	Cores                  int
	// LoadStart and LoadEnd are the load averages: the machine is
	// shared, and a busy one stretches every time in the table.
	LoadStart, LoadEnd string
	Date               time.Time
	Took               time.Duration
}

func readMachine() machine {
	m := machine{CPU: "unknown", Cores: runtime.NumCPU(), Memory: "unknown", LoadStart: loadAverage(), Date: time.Now().UTC()}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.CPU = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		var kb int64
		if _, err := fmt.Sscanf(v, "%d kB", &kb); err == nil {
			m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(out))
	}
	return m
}

// procField is the value of the first "key: value" line with key in file.
func procField(file, key string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// loadAverage is the 1, 5 and 15 minute load averages.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// commit is the slipway commit measured, and whether the tree had
// changes on top of it.
func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	status, err := exec.Command("git", "-C", root, "status", "--porcelain").Output()
	if err == nil && len(strings.TrimSpace(string(status))) > 0 {
		c += " + uncommitted changes"
	}
	return c
}

//go:embed results.md.tmpl
var resultsTemplate string

var results = template.Must(template.New("results").Parse(resultsTemplate))

func render(b *bench, m machine, rows []row) (string, error) {
	var w strings.Builder
	err := results.Execute(&w, map[string]any{
		"Machine": m, "Rows": rows, "Peers": b.peers.versions, "Commit": commit(b.root),
		"Rounds": b.rounds, "ColdRounds": b.coldRounds, "StartupRuns": b.startupRuns, "ServiceRounds": min(b.rounds, b.serviceRounds),
		"Ko": benchkit.KoVersion, "Crane": benchkit.CraneVersion,
	})
	return w.String(), err
}
