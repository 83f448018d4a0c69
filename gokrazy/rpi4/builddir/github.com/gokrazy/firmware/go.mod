module gokrazy/build/github.com/gokrazy/firmware

go 1.26.0

require github.com/gokrazy/firmware v0.0.0-20260522070551-527ce0ed43cf
