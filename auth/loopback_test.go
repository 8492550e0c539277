package auth_test

import (
	"testing"

	"lasuite.fr/people/auth"
)

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST:8071": true, "127.0.0.1": true, "127.0.0.1:8071": true, "127.9.8.7": true,
		"[::1]": true, "[::1]:8071": true, "::1": true, "[::ffff:127.0.0.1]:80": true,
		"people.example": false, "people.example:8071": false, "localhost.evil.example": false, "10.0.0.1": false,
		"0.0.0.0:8071": false, "[fe80::1%eth0]:80": false, "": false, "127.0.0.1.nip.io": false,
	} {
		if got := auth.LoopbackHost(host); got != want {
			t.Errorf("LoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
