// Command helloctl is the sample app's second binary.
package main

import "fmt"

var version = "dev"

func main() { fmt.Println("helloctl", version) }
