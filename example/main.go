// Command example is a small shop built on ginsession.
package main

func main() {}
