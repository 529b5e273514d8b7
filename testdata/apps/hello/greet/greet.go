// Package greet is a library package: slipway build must skip it.
package greet

// Hello greets name.
func Hello(name string) string { return "hello " + name }
