package main

import (
	"cmp"
	"slices"
	"time"
)

// A scene is one protocol's part of the plant's day: the devices that speak
// it and the exchanges between them. Each protocol file adds its scene from
// init; Generate plays them after the base cell traffic, in order of key, so
// the output stays deterministic however many protocols there are.
type scene struct {
	key  string
	play func(wr *Wire)
}

var scenes []scene

func addScene(key string, play func(wr *Wire)) {
	scenes = append(scenes, scene{key, play})
}

func playScenes(wr *Wire) {
	ss := slices.Clone(scenes)
	slices.SortStableFunc(ss, func(a, b scene) int { return cmp.Compare(a.key, b.key) })
	for _, s := range ss {
		s.play(wr)
		wr.Advance(time.Second)
	}
}
