package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"lasuite.fr/people/registry"
)

// registryConfig is where organizations created from a SIRET get their name (registry.go).
type registryConfig struct {
	// URL is ORGANIZATION_REGISTRY_URL: the companies registry's search API; "" when off.
	URL     string
	Timeout time.Duration // ORGANIZATION_REGISTRY_TIMEOUT: each request's
}

// registry reads the ORGANIZATION_REGISTRY_* settings. People asked the public registry when
// its La Suite plugin was installed (INSTALLED_PLUGINS); here it is on unless turned off, but
// for development, where the demo data's SIRETs are made up and a newcomer's make run should
// call nobody. "none" turns it off: an empty variable reads as unset, as everywhere in this
// configuration.
func (p *parser) registry(c Config) registryConfig {
	def := registry.DefaultURL
	if c.Development() {
		def = "none"
	}
	r := registryConfig{
		URL:     p.str("ORGANIZATION_REGISTRY_URL", def),
		Timeout: p.duration("ORGANIZATION_REGISTRY_TIMEOUT", registry.DefaultTimeout),
	}
	if strings.EqualFold(r.URL, "none") {
		r.URL = ""
		return r
	}
	if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		p.errs = append(p.errs, fmt.Sprintf("ORGANIZATION_REGISTRY_URL must be an http(s) URL such as %s, or none", registry.DefaultURL))
	}
	return r
}
