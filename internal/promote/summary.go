package promote

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/gitops"
)

// Summary is the promotion's step summary: a row per gate, then what was
// copied, recorded and tagged, and the manifests pinned; or, if failed is
// set, where it stopped.
func Summary(res *Result, changes *gitops.Result, failed error) *ci.Summary {
	s := &ci.Summary{Table: ci.Table{Short: shortCells}}
	switch {
	case res.Rollback:
		s.Title = fmt.Sprintf("Slipway promote: rollback of %s", res.Environment)
		line := fmt.Sprintf("`%s` back to `%s`", res.Repository, res.Digest)
		if res.Digest.Hex == "" {
			line = fmt.Sprintf("`%s`: nothing rolled back", res.Repository)
		}
		if res.Undone != nil {
			line += fmt.Sprintf(", undoing record #%d (`%s`)", res.Undone.Sequence, res.Undone.Digest)
		}
		s.Lines = append(s.Lines, line)
	default:
		s.Title = fmt.Sprintf("Slipway promote: %s", res.Environment)
		s.Lines = append(s.Lines, fmt.Sprintf("`%s` from `%s`", res.Digest, res.Source))
	}
	if len(res.Verdicts) > 0 {
		s.Table.Header = []string{"Gate", "Verdict", "Detail", "Evidence"}
		for _, v := range res.Verdicts {
			verdict := "✅ pass"
			if !v.Pass {
				verdict = "❌ refuse"
			}
			s.Table.Rows = append(s.Table.Rows, []string{v.Gate, verdict, v.Detail, orDash(v.Evidence)})
		}
	} else if !res.Rollback {
		s.Lines = append(s.Lines, "no gates")
	}
	refused := !Passed(res.Verdicts)
	switch {
	case failed != nil && !refused:
		s.Notes = append(s.Notes, "Failed: "+strings.Join(strings.Fields(failed.Error()), " "))
		if res.Copy != nil && res.Copy.Err == nil {
			s.Notes = append(s.Notes, fmt.Sprintf("The image was copied to `%s`; running the promotion again records it and moves the tags.", res.Repository))
		}
		return s
	case refused:
		s.Notes = append(s.Notes, "Refused: nothing was copied, recorded or tagged.")
		return s
	case res.DryRun:
		s.Notes = append(s.Notes, fmt.Sprintf("Dry run: would move %s to `%s`; nothing was changed.", tagList(res.Tags), res.Digest))
	case res.Entry == nil:
		s.Notes = append(s.Notes, fmt.Sprintf("Already in %s: tags %s name `%s`; nothing recorded.", res.Environment, tagList(res.Tags), res.Digest))
	default:
		s.Notes = append(s.Notes, fmt.Sprintf("Recorded as #%d (`%s`); tags %s now name `%s`.", res.Entry.Sequence, res.Entry.Ref, tagList(res.Tags), res.Digest))
	}
	if c := res.Copy; c != nil {
		st := c.Stats
		what := fmt.Sprintf("%d blobs uploaded (%s), %d mounted (%s), %d existing", st.Uploaded, cli.HumanSize(st.UploadedBytes), st.Mounted, cli.HumanSize(st.MountedBytes), st.Existing)
		if st.ImageExisted {
			what = "the image was there already"
		}
		s.Notes = append(s.Notes, fmt.Sprintf("Copied to `%s`: %s; %d referrers added.", res.Repository, what, st.Artifacts))
	}
	if changes != nil {
		if len(changes.Changes) == 0 {
			s.Notes = append(s.Notes, "Manifests: already pinned, nothing to change.")
		}
		for _, c := range changes.Changes {
			s.Notes = append(s.Notes, fmt.Sprintf("Manifest %s:%d: `%s` → `%s`", c.File, c.Line, c.Old, c.New))
		}
	}
	return s
}

func shortCells(col int, cell string) string {
	if col == 3 && strings.HasPrefix(cell, "sha256:") && len(cell) > 19 {
		return cell[:19] + "…"
	}
	return cell
}

func tagList(tags []string) string {
	q := make([]string, len(tags))
	for i, t := range tags {
		q[i] = "`" + t + "`"
	}
	return strings.Join(q, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// HistoryTable lays out an environment's history, oldest first, marking
// the records a rollback undid and the one in effect.
func HistoryTable(env, repo string, entries []*Entry, recs []*Record) *ci.Summary {
	s := &ci.Summary{
		Title: fmt.Sprintf("History of %s (%s)", env, repo),
		// Full digests: they are what --digest takes.
		Table: ci.Table{Header: []string{"#", "Time", "Digest", "What", "By", "Run"}},
	}
	undone := map[string]bool{}
	bySeq := map[string]int{}
	for i, e := range entries {
		bySeq[e.Ref.String()] = e.Sequence
		if recs[i].Rollback {
			undone[recs[i].Undoes] = true
		}
	}
	current := ""
	for i := len(entries) - 1; i >= 0; i-- {
		if !undone[entries[i].Ref.String()] {
			current = entries[i].Ref.String()
			break
		}
	}
	for i, e := range entries {
		r := recs[i]
		what := "promoted"
		switch {
		case r.Rollback:
			what = fmt.Sprintf("rollback of #%d", bySeq[r.Undoes])
		case r.From != "":
			what = "promoted from " + r.From
		}
		if undone[e.Ref.String()] {
			what += " (rolled back)"
		}
		if e.Ref.String() == current {
			what += " ← current"
		}
		by := r.Actor
		if r.ApprovedBy != "" {
			if by != "" {
				by += ", "
			}
			by += "approved by " + r.ApprovedBy
		}
		s.Table.Rows = append(s.Table.Rows, []string{
			fmt.Sprint(e.Sequence), e.Time.UTC().Format(time.RFC3339), e.Digest.String(), what, orDash(by), orDash(r.RunURL),
		})
	}
	return s
}

// writeJSONLines prints each record with its own digest, oldest first.
func writeJSONLines(w io.Writer, entries []*Entry, recs []*Record, signed []bool) error {
	enc := json.NewEncoder(w)
	for i, e := range entries {
		var sig *bool
		if signed != nil {
			sig = &signed[i]
		}
		if err := enc.Encode(struct {
			Ref string `json:"record"`
			*Record
			// Signed is whether a trusted identity signed the record;
			// absent without trust:.
			Signed *bool `json:"signed,omitempty"`
		}{e.Ref.String(), recs[i], sig}); err != nil {
			return err
		}
	}
	return nil
}
