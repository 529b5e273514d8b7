package scan

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// tuneGC trades memory for time while the scanners run: govulncheck
// type-checks the whole program from source and builds its SSA, which
// with Go's default GOGC spends a third of its CPU collecting garbage that
// the short-lived process would drop anyway. Collection then waits until
// the heap nears three quarters of the memory the process may use (the
// cgroup's limit, else the machine's). GOGC or GOMEMLIMIT in the
// environment, or memory that cannot be read, leave the runtime alone.
// The returned function restores the settings.
func tuneGC(getenv func(string) string) (restore func()) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	avail := memoryAvailable()
	if avail <= 0 {
		return func() {}
	}
	limit := debug.SetMemoryLimit(avail / 4 * 3)
	percent := debug.SetGCPercent(-1)
	return func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}

// memoryAvailable is the smaller of the cgroup's memory limit and the
// machine's memory, in bytes, or 0 if neither can be read (not Linux).
func memoryAvailable() int64 {
	total := memTotal()
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			return n
		}
	}
	return total
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 2 && fields[1] == "kB" {
				if kb, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}
