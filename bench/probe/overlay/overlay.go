//go:build benchprobe

// This file is not part of any package as it stands: the benchmark builds the server with
// -tags benchprobe and an -overlay that places it in the module's root package (main), so
// that the measured binary is the real server plus the probe, with no change to server.go.

package main

import _ "lasuite.fr/people/bench/probe"
