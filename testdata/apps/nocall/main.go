// Command nocall is slipway scan's sample of a vulnerability that is
// linked but never called. It imports golang.org/x/text/language v0.3.7,
// affected by GO-2022-1059 (ParseAcceptLanguage), and keeps
// ParseAcceptLanguage in a table of parsers that no code path calls: the
// linker keeps the function, so govulncheck's binary mode sees the
// vulnerable symbol, while its source analysis shows it is not called.
// It calls language.Make, which no vulnerability affects.
package main

import (
	"fmt"
	"maps"
	"os"
	"slices"

	"golang.org/x/text/language"
)

// parsers are the header parsers a future version may enable; today only
// their names are listed.
var parsers = map[string]func(string) ([]language.Tag, []float32, error){
	"accept-language": language.ParseAcceptLanguage,
}

func main() {
	tag := language.Make(os.Getenv("GREETING_LANG"))
	fmt.Printf("lang %s; parsers available: %v\n", tag, slices.Sorted(maps.Keys(parsers)))
}
