package fault

import (
	"errors"
	"fmt"
	"testing"
)

func TestOptionErrorsAreRenamedWhereverTheyAreWrapped(t *testing.T) {
	for _, tc := range []struct {
		err       error
		lib, user string
	}{
		{Optionf("base", "%q is not an image reference", "x y"), `base "x y" is not an image reference`, `--base "x y" is not an image reference`},
		{Optionf("platforms", ": linux/s390x was not built"), `platforms: linux/s390x was not built`, `--platforms: linux/s390x was not built`},
		{Optionf("entrypoint", "the build has binaries a, b; name the one to run with {option}"), "the build has binaries a, b; name the one to run with entrypoint", "the build has binaries a, b; name the one to run with --entrypoint"},
	} {
		wrapped := fmt.Errorf("building: %w", tc.err)
		if got := wrapped.Error(); got != "building: "+tc.lib {
			t.Errorf("library error = %q, want %q", got, "building: "+tc.lib)
		}
		if got := Rename(wrapped, Flag).Error(); got != "building: "+tc.user {
			t.Errorf("renamed = %q, want %q", got, "building: "+tc.user)
		}
		if Of(wrapped) != Invalid {
			t.Errorf("%v is not Invalid", wrapped)
		}
	}
	if Of(errors.New("x")) != Failure || Of(As(Refused, errors.New("x"))) != Refused {
		t.Error("kinds")
	}
}
