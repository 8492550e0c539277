// Command people is the directory server: a GraphQL API over PostgreSQL for the users,
// contacts, teams and organizations of La Suite's services. It is the only package that knows
// every other one: it reads the configuration, wires the store, auth, graph and ops packages
// and the mail and webhook senders, and runs the HTTP server.
//
//	people [serve]                       migrate (unless MIGRATE=false) and serve on LISTEN_ADDR
//	people migrate                       apply pending migrations and exit
//	people demo [--once]                 load the demo data (with --once: only into a database without it)
//	people create-staff --email <email> [--name <name>]
//	                                     make the user with this email active staff, created when none has it
//	                                     (or --id <user id>)
//	people token --user <email> --sp <client id>
//	                                     print a partner service's token from make run's development provider
//	people fill-organization-metadata   name the organizations still named by their SIRET
//	                                     after the companies registry (ORGANIZATION_REGISTRY_URL)
//	people import-people --from <People database URL> [--dry-run] [--issuer <url>] [--allow-skips] [--report <file>]
//	                                     copy a People database into this one, with a report of every row changed or skipped
//	people help (or -h, --help)          list the commands; an unknown one lists them on stderr, exit status 2
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/trace"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/devop"
	"lasuite.fr/people/graph"
	"lasuite.fr/people/graph/playground"
	"lasuite.fr/people/mail"
	"lasuite.fr/people/migrations"
	"lasuite.fr/people/ops"
	"lasuite.fr/people/rest"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/demo"
	"lasuite.fr/people/telemetry"
	"lasuite.fr/people/webhook"
)

// defaultGCPercent is the collector's pace when GOGC is not set (see main).
const defaultGCPercent = 400

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, set := os.LookupEnv("GOGC"); !set {
		// A request allocates a few thousand short-lived objects and the live heap is small
		// (tens of MB), so the collector's default pace (GOGC=100) spends a sixth of the CPU on
		// it under load. 400 trades some memory for that CPU; GOGC set in the environment wins.
		debug.SetGCPercent(defaultGCPercent)
	}
	os.Exit(exitCode(run(ctx, os.Args[1:], os.Getenv, os.Stdout, nil), os.Stderr))
}

// run is the whole program. ready, when not nil, receives the listening address once the
// server accepts connections (tests use it; main passes nil).
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, ready chan<- string) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch {
	case cmd == "help" || cmd == "-h" || cmd == "--help": // no configuration needed to ask
		_, err := io.WriteString(stdout, usage())
		return err
	case !isCommand(cmd):
		return &usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
	if cmd == "token" { // a client of a running server: no database, no configuration
		return devToken(ctx, args, getenv, stdout)
	}
	if cmd == "fill-organization-metadata" && len(args) > 0 { // it takes no arguments
		if args[0] == "-h" || args[0] == "--help" {
			_, err := io.WriteString(stdout, fillUsage)
			return err
		}
		return &usageError{"fill-organization-metadata takes no arguments"}
	}
	var imp importArgs
	if cmd == "import-people" {
		var err error
		if imp, err = parseImportArgs(args, stdout); errors.Is(err, flag.ErrHelp) {
			return nil
		} else if err != nil {
			return err
		}
	}
	var staff staffArgs
	if cmd == "create-staff" { // -h and usage errors need no configuration
		var err error
		if staff, err = parseStaffArgs(args, stdout); errors.Is(err, flag.ErrHelp) {
			return nil
		} else if err != nil {
			return err
		}
	}
	cfg, err := parseConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stdout)
	slog.SetDefault(log) // libraries that log through slog's default (zitadel/oidc) use ours
	if len(cfg.PeopleIgnored) > 0 {
		// One line, so that an operator moving from People sees at once what no longer applies.
		log.Info("people settings ignored", "names", cfg.PeopleIgnored, "see", "README: Moving from People")
	}
	opts := store.Options{
		MaxConns: cfg.DatabaseMaxConns, StatementTimeout: cfg.StatementTimeout, InvitationValidity: cfg.InvitationValidity,
		WebhookAllowHTTP: cfg.Webhook.AllowHTTP, InvitationsPerHour: cfg.InvitationRateLimit,
		Pooler: cfg.DatabasePooler, ListenURL: cfg.DatabaseListenURL.reveal(),
	}
	for _, k := range cfg.Webhook.SecretKeys {
		opts.SecretKeys = append(opts.SecretKeys, []byte(k.reveal()))
	}
	// The tracer sits on the database connections, so it exists before the store opens them.
	var tracer trace.Tracer
	if cmd == "serve" {
		tp, err := newTracerProvider(ctx, cfg, log)
		if err != nil {
			return err
		}
		if tp != nil {
			defer func() { // after the server stopped: its last spans go out
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				tp.Shutdown(sctx)
			}()
			tracer = tp.Tracer(telemetry.TracerName)
			opts.Tracer = telemetry.QueryTracer{Tracer: tracer}
			log.Info("tracing", "otlp_endpoint", cfg.Telemetry.OTLPEndpoint, "sample_ratio", cfg.Telemetry.SampleRatio)
		}
	}
	s, err := store.Open(ctx, cfg.DatabaseURL.reveal(), opts)
	if err != nil {
		return err
	}
	defer s.Close()

	switch cmd {
	case "migrate":
		if err := migrate(ctx, s, log); err != nil {
			return err
		}
		return sealWebhookSecrets(ctx, s, log)
	case "demo":
		return loadDemo(ctx, s, log, args)
	case "fill-organization-metadata":
		if err := migrations.Check(ctx, s.DB().DB); err != nil {
			return err
		}
		if cfg.Registry.URL == "" {
			return errors.New("fill-organization-metadata: ORGANIZATION_REGISTRY_URL is none")
		}
		c, err := newRegistryClient(cfg.Registry)
		if err != nil {
			return err
		}
		return fillOrganizationMetadata(ctx, s, c, log, stdout)
	case "create-staff":
		if err := migrations.Check(ctx, s.DB().DB); err != nil {
			return err
		}
		return createStaff(ctx, s, log, stdout, staff, staffIssuer(cfg), cfg.Login.FallbackToEmail)
	case "import-people":
		if err := migrations.Check(ctx, s.DB().DB); err != nil {
			return err
		}
		return importPeople(ctx, s, log, stdout, os.Stderr, imp, staffIssuer(cfg))
	case "serve":
		if cfg.Migrate {
			if err := migrate(ctx, s, log); err != nil {
				return err
			}
		} else if err := migrations.Check(ctx, s.DB().DB); err != nil {
			return err
		}
		if err := sealWebhookSecrets(ctx, s, log); err != nil {
			return err
		}
		return serve(ctx, cfg, s, tracer, log, ready)
	}
	return fmt.Errorf("command %q is listed but not handled", cmd) // a bug: commands and this switch disagree
}

// newLogger logs as text for a developer and as JSON in production; every record made with a
// request's context carries its request id (ops.NewLogHandler).
func newLogger(cfg Config, w io.Writer) *slog.Logger {
	o := &slog.HandlerOptions{Level: cfg.Telemetry.LogLevel}
	if cfg.Development() {
		return slog.New(ops.NewLogHandler(slog.NewTextHandler(w, o)))
	}
	return slog.New(ops.NewLogHandler(slog.NewJSONHandler(w, o)))
}

func migrate(ctx context.Context, s *store.Store, log *slog.Logger) error {
	n, err := migrations.Up(ctx, s.DB().DB)
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "database migrated", "applied", n, "version", migrations.Latest())
	return nil
}

// sealWebhookSecrets seals the webhook secrets stored in clear or under a previous key
// (migration 0009, store.SealWebhookSecrets) before the server sends any. A secret no key opens
// is an operator's to fix (SECRET_KEY replaced without SECRET_KEY_FALLBACKS): its deliveries
// fail until then, and the server serves meanwhile.
func sealWebhookSecrets(ctx context.Context, s *store.Store, log *slog.Logger) error {
	sealed, unreadable, err := s.SealWebhookSecrets(ctx)
	if err != nil {
		return err
	}
	if sealed > 0 {
		log.InfoContext(ctx, "webhook secrets sealed under the current key", "secrets", sealed)
	}
	if unreadable > 0 {
		log.ErrorContext(ctx, "webhook secrets open with neither SECRET_KEY nor SECRET_KEY_FALLBACKS: their deliveries fail until the key that sealed them is a fallback again, or the secrets are set anew",
			"secrets", unreadable)
	}
	return nil
}

func loadDemo(ctx context.Context, s *store.Store, log *slog.Logger, args []string) error {
	once := len(args) > 0 && args[0] == "--once"
	if err := migrate(ctx, s, log); err != nil {
		return err
	}
	if once {
		loaded, err := demo.Loaded(ctx, s.DB())
		if err != nil {
			return err
		}
		if loaded {
			log.InfoContext(ctx, "demo data already loaded")
			return nil
		}
	}
	start := time.Now()
	st, err := demo.Load(ctx, s.DB(), demo.Options{})
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "demo data loaded", "users", st.Users, "teams", st.Teams, "team_accesses", st.TeamAccesses,
		"contacts", st.Contacts, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// mailInterval is how often queued emails are looked for.
const mailInterval = 5 * time.Second

// sessionPurgeInterval is how often expired sessions are deleted.
const sessionPurgeInterval = 10 * time.Minute

// newSessions prepares browser sessions; creds is nil without a credential cache.
func newSessions(cfg Config, s *store.Store, creds *auth.CredentialCache, log *slog.Logger) *auth.Sessions {
	return auth.NewSessions(s, auth.SessionOptions{
		CookieSecure: cfg.SessionCookieSecure, CookieAge: cfg.SessionCookieAge,
		PublicOrigin: cfg.PublicURL, AllowedOrigins: cfg.CORSAllowedOrigins, Cache: creds,
	}, log)
}

func newMux(cfg Config, s *store.Store, sessions *auth.Sessions, rs *auth.ResourceServer, o *ops.Layer, log *slog.Logger) *http.ServeMux {
	settings := graph.Settings{
		Release: cfg.Release, Commit: cfg.Commit, RegistrationIDPattern: cfg.RegistrationIDPattern,
		Features: graph.Features{
			ContactsDisplay: cfg.FeatureContactsDisplay, ContactsCreate: cfg.FeatureContactsCreate,
			TeamsDisplay: cfg.FeatureTeamsDisplay, TeamsCreate: cfg.FeatureTeamsCreate,
		},
	}
	api := graph.NewHandler(s, graph.Options{Log: log, Settings: settings,
		Limits: cfg.GraphQL.limits(), Introspection: cfg.GraphQL.introspection(cfg.Development()), Observer: o})
	mux := http.NewServeMux()
	// CORS answers preflights before anyone authenticates. The bearer middleware (partner
	// services) goes right after it: a request with an Authorization header is judged by that header
	// alone, and the session middleware then leaves it be. CSRF needs to know which of the two
	// authenticated the request, so it comes after both, and so does the anonymous rate limit
	// (ops.Layer.Callers). The handler bounds the body itself (GRAPHQL_MAX_BODY_BYTES), answering 413.
	var endpoint http.Handler = sessions.CSRF(api)
	endpoint = o.Callers(endpoint)
	endpoint = sessions.Middleware(endpoint)
	endpoint = rs.Middleware(endpoint)
	mux.Handle("/graphql", sessions.CORS(endpoint))
	// People's partner REST API (package rest), behind the same bearer middleware and gates as
	// /graphql, so that a partner's token is judged, rate-limited and logged alike on both. No
	// session middleware (People accepts only tokens there), hence no CSRF, which guards cookies.
	rest.New(s, rest.Options{PublicURL: cfg.PublicURL, Log: log, Throttle: o.Throttle}).
		Mount(mux, func(h http.Handler) http.Handler { return rs.Middleware(o.Callers(h)) })
	// The public keys that the authorization server encrypts introspection answers to, here
	// and at People's paths (also /resource-server/v1.0/jwks, people_routes.go).
	mux.Handle("GET /jwks", rs.JWKS())
	mux.Handle("GET /api/v1.0/jwks", rs.JWKS())
	pg := playground.Handler()
	mux.Handle("/playground", pg)
	mux.Handle("/playground/", pg)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		err := s.Ping(ctx)
		if err == nil {
			err = migrations.Check(ctx, s.DB().DB)
		}
		if err != nil {
			log.WarnContext(ctx, "not ready", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "database unavailable\n")
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", o.MetricsHandler())
	mountPeopleRoutes(mux, cfg, settings, s, rs, log)
	return mux
}

// serve runs the server until ctx is done; tracer is nil when tracing is off.
func serve(ctx context.Context, cfg Config, s *store.Store, tracer trace.Tracer, log *slog.Logger, ready chan<- string) error {
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddr, err)
	}
	defer ln.Close() // srv.Serve closes it too; this is for the set-up errors below
	o := newOps(cfg, s.DB().DB, tracer, log)
	defer o.Close()
	purgeCtx, stopPurge := context.WithCancel(ctx) // the background workers' context
	defer stopPurge()
	// The credential cache spares most requests the statement that authenticates them; its
	// listener hears every instance's revocations from the database (SESSION_CACHE_TTL).
	var creds *auth.CredentialCache
	rev, err := s.Revocations(log)
	switch {
	case cfg.SessionCacheTTL <= 0:
	case errors.Is(err, store.ErrNoListener):
		// Without the listener a cached credential could outlive its revocation: no cache.
		log.Warn("credential cache off: behind DATABASE_POOLER=transaction the revocation listener needs DATABASE_LISTEN_URL, so every request reads its credentials from the database")
	case err != nil:
		return err
	default:
		creds = auth.NewCredentialCache(rev, auth.CredentialCacheOptions{TTL: cfg.SessionCacheTTL, Metrics: o.Metrics()})
		listened := make(chan struct{})
		go func() { defer close(listened); rev.Run(purgeCtx) }()
		defer func() { stopPurge(); <-listened }()
	}
	sessions := newSessions(cfg, s, creds, log)
	purged := make(chan struct{})
	go func() { defer close(purged); sessions.PurgeEvery(purgeCtx, sessionPurgeInterval) }()
	defer func() { stopPurge(); <-purged }() // before run closes the store
	if cfg.Mail.Host != "" || cfg.Development() {
		mailed := make(chan struct{})
		go func() { defer close(mailed); mail.New(mailOptions(cfg.Mail), s, log).Run(purgeCtx, mailInterval) }()
		defer func() { stopPurge(); <-mailed }()
	} else {
		log.Warn("invitation emails stay queued: set EMAIL_HOST")
	}
	// Team webhooks are delivered by every instance: each delivery is claimed before it is sent.
	hooked := make(chan struct{})
	go func() {
		defer close(hooked)
		webhook.New(webhookOptions(cfg.Webhook), s, log).Run(purgeCtx, webhook.Interval)
	}()
	defer func() { stopPurge(); <-hooked }()
	// Organizations created from a SIRET are named after the registry by every instance, each
	// lookup claimed before it is made; logins never wait for it.
	if cfg.Registry.URL != "" {
		f, err := newRegistryFiller(cfg.Registry, s, log)
		if err != nil {
			return err
		}
		filled := make(chan struct{})
		go func() { defer close(filled); f.run(purgeCtx, registryInterval) }()
		defer func() { stopPurge(); <-filled }()
	}
	dev, err := newDevOIDC(ctx, cfg, s, log)
	if err != nil {
		return err
	}
	rs, err := newResourceServer(cfg, s, dev, creds, o, log)
	if err != nil {
		return err
	}
	mux := newMux(cfg, s, sessions, rs, o, log)
	if dev != nil {
		mux.Handle(devop.Path+"/", dev.Handler())
	}
	login, err := newLogin(cfg, s, sessions, dev, log)
	if err != nil {
		return err
	}
	if login != nil {
		login.Mount(mux)
	}
	srv := &http.Server{
		Handler:           o.Middleware(mux),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	base := "http://" + displayAddr(ln.Addr())
	log.InfoContext(ctx, "serving", "graphql", base+"/graphql", "health", base+"/healthz", "environment", cfg.Environment)
	if cfg.Development() {
		fmt.Fprintf(os.Stderr, "\n  GraphQL:    %s/graphql\n  Playground: %s/playground\n  Health:     %s/healthz\n\n", base, base, base)
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newDevOIDC starts the development OpenID provider of `make run` when the configuration
// allows it, else returns nil: only in development, only without a real provider (OIDC_OP_URL),
// and only on a loopback LISTEN_ADDR unless DEV_OIDC_ALLOW_REMOTE. Its issuer is under
// PUBLIC_URL, where the demo users' identities expect it (http://localhost:8071/dev-oidc).
func newDevOIDC(ctx context.Context, cfg Config, s *store.Store, log *slog.Logger) (*devop.Provider, error) {
	if !cfg.Development() || cfg.OIDCOPURL != "" {
		return nil, nil
	}
	if err := devop.CheckListenAddr(cfg.ListenAddr, cfg.DevOIDCAllowRemote); err != nil {
		log.WarnContext(ctx, "development OpenID provider not mounted", "reason", err.Error())
		return nil, nil
	}
	o := devop.Options{
		Issuer: cfg.PublicURL + devop.Path,
		Users:  s,
		RPClient: devop.Client{ID: "people",
			RedirectURIs:           []string{cfg.PublicURL + auth.OurRoutes.Callback, cfg.PublicURL + auth.PeopleRoutes.Callback},
			PostLogoutRedirectURIs: []string{cfg.PublicURL + auth.OurRoutes.LogoutCallback, cfg.PublicURL + auth.PeopleRoutes.LogoutCallback}},
		PartnerClients: []devop.Client{{ID: "docs"}, {ID: "meet"}}, // the demo's service providers
		Development:    true,
		Log:            log,
	}
	if err := devIntrospection(cfg.Bearer, &o); err != nil {
		return nil, err
	}
	return devop.New(ctx, o)
}

// newLogin prepares the browser sign-in against OIDC_OP_URL, or against the development
// provider when that runs; without either there is no browser sign-in (nil).
func newLogin(cfg Config, s *store.Store, sessions *auth.Sessions, dev *devop.Provider, log *slog.Logger) (*auth.Login, error) {
	l := cfg.Login
	lc := auth.LoginConfig{
		Issuer: cfg.OIDCOPURL, ClientID: l.ClientID, ClientSecret: l.ClientSecret.reveal(),
		SignAlgs: l.SignAlgs, Scopes: l.Scopes, ExtraParams: l.ExtraParams, UserinfoFormat: l.UserinfoFormat,
		Endpoints: l.Endpoints, PublicURL: cfg.PublicURL, NameFields: l.NameFields, RegistrationIDClaim: l.RegistrationIDClaim,
		LoginRedirect: l.LoginRedirect, FailureRedirect: l.FailureRedirect, LogoutRedirect: l.LogoutRedirect,
		CookieSecure: cfg.SessionCookieSecure, SecretKey: []byte(l.SecretKey.reveal()),
		Provisioning: store.LoginOptions{FallbackToEmail: l.FallbackToEmail, CreateUser: l.CreateUser,
			FirstUserAdmin: l.FirstUserAdmin, RegistrationIDPattern: cfg.RegistrationIDPattern,
			SharedEmailDomains: l.SharedEmailDomains},
		EmailVerifiedRequired: !l.EmailVerifiedDefault, AllowLogoutGet: l.AllowLogoutGet,
	}
	switch {
	case cfg.OIDCOPURL != "":
	case dev != nil:
		// The development provider answers like ProConnect: ask for the claims People's
		// deployments ask for, so that names and SIRETs flow as in production.
		rc := dev.RPClient()
		lc.Issuer, lc.ClientID, lc.ClientSecret = dev.Issuer(), rc.ID, rc.Secret
		lc.Scopes = []string{"openid", "email", "given_name", "usual_name", "siret"}
		lc.RegistrationIDClaim, lc.Endpoints = "siret", nil
	default:
		log.Warn("browser sign-in is off: set OIDC_OP_URL (or run in development for the built-in provider)")
		return nil, nil
	}
	return auth.NewLogin(lc, s, sessions, log)
}

// displayAddr names a listening address as a person would type it.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil || host == "::" || host == "0.0.0.0" || host == "" {
		return "localhost:" + port
	}
	return net.JoinHostPort(host, port)
}
