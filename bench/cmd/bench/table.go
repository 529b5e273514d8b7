package main

import (
	"fmt"
	"time"

	"github.com/slipwayci/slipway/bench/internal/benchkit"
)

// row is one line of the results table. Ratios are slipway over the
// peer: below 1 slipway is faster, or sends less.
type row struct {
	What, Slipway, Peer, Ratio, Target, Mark string
}

// timeRow compares wall times, and CPU times beside them; target, if
// not zero, is the wall-time ratio the issue asks for at most.
func timeRow(what string, s, p []benchkit.Sample, peerName string, target float64) row {
	ms, mp := benchkit.Median(s), benchkit.Median(p)
	cell := func(m benchkit.Sample) string { return fmt.Sprintf("%s (CPU %s)", duration(m.Wall), duration(m.CPU)) }
	r := row{What: what, Slipway: cell(ms), Peer: peerName + ": " + cell(mp), Target: "—", Mark: "—"}
	ratio := float64(ms.Wall) / float64(mp.Wall)
	r.Ratio = fmt.Sprintf("%.2f× (CPU %s)", ratio, ratioOf(float64(ms.CPU), float64(mp.CPU)))
	if target > 0 {
		r.Target = fmt.Sprintf("≤ %.1f×", target)
		r.Mark = "miss"
		if ratio <= target {
			r.Mark = "pass"
		}
	}
	return r
}

// registryRow compares time, requests and bytes uploaded in blobs; the
// issue asks these be reported, with no bound.
func registryRow(what string, s, p []benchkit.Sample, peerName string) row {
	ms, mp := benchkit.Median(s), benchkit.Median(p)
	cell := func(m benchkit.Sample) string {
		return fmt.Sprintf("%s · %d req · %s up", duration(m.Wall), m.Requests, byteSize(m.BlobBytes))
	}
	return row{
		What: what, Slipway: cell(ms), Peer: peerName + ": " + cell(mp),
		Ratio: fmt.Sprintf("%s · %s · %s", ratioOf(float64(ms.Wall), float64(mp.Wall)),
			ratioOf(float64(ms.Requests), float64(mp.Requests)), ratioOf(float64(ms.BlobBytes), float64(mp.BlobBytes))),
		Target: "report time, requests, bytes", Mark: "—",
	}
}

// notMeasured is a row with no numbers, and why.
func notMeasured(what, reason string) row {
	return row{What: what, Slipway: "not measured: " + reason, Peer: "—", Ratio: "—", Target: "—", Mark: "—"}
}

func ratioOf(s, p float64) string {
	switch {
	case p == 0 && s == 0:
		return "="
	case p == 0:
		return "—"
	}
	return fmt.Sprintf("%.2f×", s/p)
}

func duration(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func byteSize(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
