package ops

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"lasuite.fr/people/auth"
)

// MetricsHandler serves the metrics to loopback clients, and to anyone presenting
// Options.MetricsToken as a bearer token; with MetricsLoopback false (METRICS_LOOPBACK=false),
// to every client. A loopback
// client is a loopback peer that names a loopback host: a page of another site whose name was
// rebound to 127.0.0.1 (DNS rebinding) reaches a loopback peer too, but with its own name in
// Host. A loopback peer that relays for someone else (a reverse proxy on the same host, which
// adds X-Forwarded-For or Forwarded) does not count either.
func (o *Layer) MetricsHandler() http.Handler {
	token, loopback, log := o.metricsToken, o.metricsLoopback, o.log
	serve := o.metrics.Handler(log)
	if !loopback {
		return serve // the network restricts who reaches it (METRICS_LOOPBACK's documentation)
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local := peerAddr(r).IsLoopback() && auth.LoopbackHost(r.Host) &&
			r.Header.Get("X-Forwarded-For") == "" && r.Header.Get("Forwarded") == ""
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		// Hashes of equal length, so that the comparison says nothing about the token's length.
		sum := sha256.Sum256([]byte(got))
		authorized := token != "" && strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare(sum[:], want[:]) == 1
		if !local && !authorized {
			log.WarnContext(r.Context(), "metrics refused", "reason", "not a loopback client and no valid METRICS_TOKEN")
			http.Error(w, "forbidden: metrics are served to loopback clients, or with METRICS_TOKEN\n", http.StatusForbidden)
			return
		}
		serve.ServeHTTP(w, r)
	})
}
