module github.com/ginsession/ginsession/bench

go 1.25.0

replace github.com/ginsession/ginsession => ../
