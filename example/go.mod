module github.com/ginsession/ginsession/example

go 1.25.0

replace github.com/ginsession/ginsession => ../
