package benchkit

import (
	"slices"
	"syscall"
	"time"

	"github.com/slipwayci/slipway/internal/registrytest"
)

// Sample is one measured run.
type Sample struct {
	Wall time.Duration
	// CPU is the user and system time of the commands run: steadier than
	// the wall time on a shared machine.
	CPU time.Duration
	// Requests reached the registries; BlobBytes of their bodies were blob
	// uploads, AllBytes any body (manifests included).
	Requests            int
	BlobBytes, AllBytes int64
	// PeakRSS is the most resident memory one process reached, in bytes,
	// where the measure records it.
	PeakRSS int64
}

// Timed runs f and returns its wall time and the CPU time of the child
// processes it ran and waited for.
func Timed(f func() error) (Sample, error) {
	before := childrenCPU()
	start := time.Now()
	err := f()
	return Sample{Wall: time.Since(start), CPU: childrenCPU() - before}, err
}

// childrenCPU is the user and system time of every child process waited
// for so far, and of the children they waited for.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Counted runs f and counts what reached the registries behind proxies
// meanwhile.
func Counted(f func() error, proxies ...*registrytest.Proxy) (Sample, error) {
	for _, p := range proxies {
		p.Reset()
	}
	s, err := Timed(f)
	if err != nil {
		return s, err
	}
	for _, p := range proxies {
		for _, q := range p.Requests() {
			s.Requests++
			s.AllBytes += q.Sent
			if q.Upload() {
				s.BlobBytes += q.Sent
			}
		}
	}
	return s, nil
}

// Median takes each measure's median on its own; of an even count, the
// mean of the middle two.
func Median(ss []Sample) Sample {
	if len(ss) == 0 {
		return Sample{}
	}
	mid := func(field func(Sample) int64) int64 {
		vals := make([]int64, len(ss))
		for i, s := range ss {
			vals[i] = field(s)
		}
		slices.Sort(vals)
		n := len(vals)
		if n%2 == 0 {
			return (vals[n/2-1] + vals[n/2]) / 2
		}
		return vals[n/2]
	}
	return Sample{
		Wall:      time.Duration(mid(func(s Sample) int64 { return int64(s.Wall) })),
		CPU:       time.Duration(mid(func(s Sample) int64 { return int64(s.CPU) })),
		Requests:  int(mid(func(s Sample) int64 { return int64(s.Requests) })),
		BlobBytes: mid(func(s Sample) int64 { return s.BlobBytes }),
		AllBytes:  mid(func(s Sample) int64 { return s.AllBytes }),
		PeakRSS:   mid(func(s Sample) int64 { return s.PeakRSS }),
	}
}
