module gokrazy/build/github.com/passivesensor/sensor

go 1.26.0

require github.com/passivesensor/sensor v0.0.0-00010101000000-000000000000

replace github.com/passivesensor/sensor => ../../../../../../../..
