// The tool that .ci/release-check.bash publishes the modules with, to a
// module proxy in a directory. Its own module, outside go.work, so that
// golang.org/x/mod reaches no module of the library.
module modproxy

go 1.25.0

require golang.org/x/mod v0.38.0
