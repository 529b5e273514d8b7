// Command vulnerable is slipway scan's sample service. On purpose it
//   - calls language.Parse of golang.org/x/text v0.3.6 (GO-2021-0113,
//     reachable) and imports the package without calling
//     ParseAcceptLanguage (GO-2022-1059, imported only);
//   - imports gopkg.in/yaml.v2 v2.2.7 but only encodes, so the vulnerable
//     decoder (GO-2020-0036) is never called;
//   - hashes with MD5 and draws from math/rand, which gosec reports
//     (G401, G501, G404).
package main

import (
	"crypto/md5"
	"fmt"
	"math/rand"
	"os"

	"golang.org/x/text/language"
	"gopkg.in/yaml.v2"
)

func main() {
	tag, err := language.Parse(os.Getenv("GREETING_LANG"))
	if err != nil {
		tag = language.English
	}
	out, err := yaml.Marshal(map[string]string{"lang": tag.String()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sum := md5.Sum(out)
	fmt.Printf("%s# %x %d\n", out, sum, rand.Intn(100))
}
