package main

import (
	"encoding/binary"
	"testing"
)

func inputEvent(typ, code uint16, value int32) []byte {
	ev := make([]byte, inputEventSize)
	binary.LittleEndian.PutUint16(ev[16:], typ)
	binary.LittleEndian.PutUint16(ev[18:], code)
	binary.LittleEndian.PutUint32(ev[20:], uint32(value))
	return ev
}

func TestIsPowerPress(t *testing.T) {
	cases := []struct {
		name string
		ev   []byte
		want bool
	}{
		{"power key down", inputEvent(evKey, keyPower, 1), true},
		{"power key up", inputEvent(evKey, keyPower, 0), false},
		{"another key", inputEvent(evKey, 115, 1), false},
		{"sync event", inputEvent(0, 0, 0), false},
		{"short read", inputEvent(evKey, keyPower, 1)[:20], false},
	}
	for _, tc := range cases {
		if got := isPowerPress(tc.ev); got != tc.want {
			t.Errorf("%s: %t; want %t", tc.name, got, tc.want)
		}
	}
}
