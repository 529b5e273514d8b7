package provenance

import (
	"fmt"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// Validate checks a provenance statement against in-toto's Statement v1
// and SLSA's provenance v1, as the in-toto project's own types define
// them: no field they lack, the fields SLSA requires, digests of the right
// length, timestamps that parse, a start no later than the finish.
func Validate(statement []byte) error {
	strict := protojson.UnmarshalOptions{DiscardUnknown: false}
	var st intoto.Statement
	if err := strict.Unmarshal(statement, &st); err != nil {
		return fmt.Errorf("not an in-toto statement: %w", err)
	}
	if err := st.Validate(); err != nil {
		return err
	}
	if st.GetPredicateType() != PredicateType {
		return fmt.Errorf("predicate type %q, not %s", st.GetPredicateType(), PredicateType)
	}
	raw, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		return err
	}
	var p slsa.Provenance
	if err := strict.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("not SLSA provenance v1: %w", err)
	}
	if err := p.Validate(); err != nil {
		return err
	}
	md := p.GetRunDetails().GetMetadata()
	if s, f := md.GetStartedOn(), md.GetFinishedOn(); s != nil && f != nil && f.AsTime().Before(s.AsTime()) {
		return fmt.Errorf("finishedOn %s is before startedOn %s", f.AsTime(), s.AsTime())
	}
	return nil
}
