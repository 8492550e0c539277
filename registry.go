package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/registry"
	"lasuite.fr/people/store"
)

// Registry lookup timing. A lookup is at most registry.DefaultMaxAttempts requests of the
// timeout each and the Retry-After waits between them: the lease outlasts that, so a live
// instance never sees its lookup taken over, and a crashed one's lookups are taken over
// minutes later.
const (
	registryInterval    = 2 * time.Second
	registryBatch       = 4 // looked up concurrently: the public registry allows 7 requests a second
	registryBackoffBase = time.Minute
	registryBackoffCap  = 6 * time.Hour
	registryMaxAttempts = 8 // waits of 1, 2, 4… 64 minutes: about two hours of a registry down, then given up
)

// registryFiller names the organizations that logins created from a SIRET, after the companies
// registry, as People's La Suite plugin did but never in the login itself: the login queues the
// organization (store.ProvisionLogin) and returns; every instance runs a filler, which claims
// due lookups in the database, so that a crash loses none and two instances never ask twice.
type registryFiller struct {
	client      *registry.Client
	store       *store.Store
	log         *slog.Logger
	lease       time.Duration
	backoffBase time.Duration // tests shorten it
}

func newRegistryClient(cfg registryConfig) (*registry.Client, error) {
	return registry.New(registry.Options{URL: cfg.URL, Timeout: cfg.Timeout})
}

func newRegistryFiller(cfg registryConfig, s *store.Store, log *slog.Logger) (*registryFiller, error) {
	c, err := newRegistryClient(cfg)
	if err != nil {
		return nil, err
	}
	lease := time.Duration(registry.DefaultMaxAttempts)*(cfg.Timeout+registry.DefaultMaxRetryWait) + time.Minute
	return &registryFiller{client: c, store: s, log: log, lease: lease, backoffBase: registryBackoffBase}, nil
}

// run looks the due organizations up every interval until ctx ends, at once again after a
// full batch.
func (f *registryFiller) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		claimed, err := f.fillDue(ctx)
		if err != nil && ctx.Err() == nil {
			f.log.ErrorContext(ctx, "organization registry queue", "err", err)
		}
		if claimed == registryBatch && err == nil && ctx.Err() == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// fillDue claims the lookups due now, runs them concurrently and records each outcome; it
// returns how many it claimed.
func (f *registryFiller) fillDue(ctx context.Context) (int, error) {
	ls, err := f.store.ClaimOrganizationLookups(ctx, registryBatch, f.lease)
	if err != nil {
		return 0, err
	}
	errs := make([]error, len(ls))
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Go(func() { errs[i] = f.fill(ctx, l) })
	}
	wg.Wait()
	return len(ls), errors.Join(errs...)
}

// fill looks one organization up and records the outcome; the error is the recording's. A
// lookup cut by shutdown is not recorded: its lease runs out and an instance asks again.
func (f *registryFiller) fill(ctx context.Context, l store.OrganizationLookup) error {
	log := f.log.With("organization_id", l.OrganizationID, "attempt", l.Attempts)
	o, err := f.client.Lookup(ctx, l.RegistrationID)
	if ctx.Err() != nil {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	switch {
	case err == nil:
		renamed, err := f.store.NameOrganizationFromRegistry(ctx, l.OrganizationID, l.RegistrationID, o.Name, o.Metadata())
		if err != nil {
			return err
		}
		if renamed {
			log.InfoContext(ctx, "organization named from the registry")
		} else {
			log.InfoContext(ctx, "organization renamed meanwhile: the registry's name is not used")
		}
		return nil
	case errors.Is(err, registry.ErrNotFound):
		log.WarnContext(ctx, "organization not in the registry: it keeps its registration id as name")
		return f.store.OrganizationLookupFailed(ctx, l.OrganizationID, 0)
	case l.Attempts >= registryMaxAttempts:
		log.ErrorContext(ctx, "organization registry lookup given up: people fill-organization-metadata tries again", "err", err)
		return f.store.OrganizationLookupFailed(ctx, l.OrganizationID, 0)
	default:
		log.WarnContext(ctx, "organization registry lookup failed, will retry", "err", err)
		return f.store.OrganizationLookupFailed(ctx, l.OrganizationID, min(f.backoffBase<<(l.Attempts-1), registryBackoffCap))
	}
}

// fillUsage is what `people fill-organization-metadata -h` prints.
const fillUsage = `usage: people fill-organization-metadata

Looks every organization still named by its registration id (the SIRET a first login gave it)
up in the companies registry (ORGANIZATION_REGISTRY_URL), and names those it knows as the server
would: the commune's name for a commune, else the establishment's first shop sign, else the
company's name, with the metadata is_public_service and is_commune. An organization renamed
meanwhile keeps its name. It prints one line per organization and a summary, and exits 1 when a
lookup failed (run it again later). It needs DATABASE_URL and the server's configuration.
`

// fillOrganizationMetadata is `people fill-organization-metadata`: it looks every organization
// still named by its registration id up in the registry, now, queued or not, names those the
// registry knows and reports what it did. People's command of this name fills the metadata's
// defaults from ORGANIZATION_METADATA_SCHEMA instead; its plugin named only new organizations.
// Lookups go one at a time, so as not to crowd out the servers' own.
func fillOrganizationMetadata(ctx context.Context, s *store.Store, c *registry.Client, log *slog.Logger, stdout io.Writer) error {
	var seen, named, kept, absent, failed int
	var after uuid.UUID
	for {
		page, err := s.OrganizationsNamedByRegistrationID(ctx, after, 100)
		if err != nil {
			return fmt.Errorf("fill-organization-metadata: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for _, l := range page {
			after = l.OrganizationID
			seen++
			o, err := c.Lookup(ctx, l.RegistrationID)
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(err, registry.ErrNotFound):
				absent++
				fmt.Fprintf(stdout, "%s %s: not in the registry\n", l.OrganizationID, l.RegistrationID)
			case err != nil:
				failed++
				log.WarnContext(ctx, "organization registry lookup failed", "organization_id", l.OrganizationID, "err", err)
				fmt.Fprintf(stdout, "%s %s: lookup failed\n", l.OrganizationID, l.RegistrationID)
			default:
				renamed, err := s.NameOrganizationFromRegistry(ctx, l.OrganizationID, l.RegistrationID, o.Name, o.Metadata())
				if err != nil {
					return fmt.Errorf("fill-organization-metadata: %w", err)
				}
				if renamed {
					named++
					fmt.Fprintf(stdout, "%s %s: named %q\n", l.OrganizationID, l.RegistrationID, o.Name)
				} else {
					kept++
					fmt.Fprintf(stdout, "%s %s: renamed meanwhile, kept\n", l.OrganizationID, l.RegistrationID)
				}
			}
		}
	}
	fmt.Fprintf(stdout, "%d organizations named by their registration id: %d named from the registry, %d not in it, %d renamed meanwhile, %d failed\n",
		seen, named, absent, kept, failed)
	log.InfoContext(ctx, "organization metadata filled", "organizations", seen, "named", named, "absent", absent, "kept", kept, "failed", failed)
	if failed > 0 {
		return fmt.Errorf("fill-organization-metadata: %d lookups failed: run it again later", failed)
	}
	return nil
}
