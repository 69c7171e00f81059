package referral

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	netmail "net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/referralkit/referralkit/mail"
)

// DeliveryMode says when the email is sent.
type DeliveryMode int

const (
	// Inline records the invite, sends the email within the request and
	// answers 201 once it was accepted by the transport (500 if not).
	// [Handler.Run] must run too: it sends the invites whose process died
	// between recording and sending them.
	Inline DeliveryMode = iota
	// Queued records the invite and answers 201 at once; [Handler.Run]
	// delivers it.
	Queued
)

// Config configures a [Handler]. Auth, Store, Mailer, From and SignupURL are
// required; every other field has the default its comment states, which
// its zero value selects. A negative value is an error from [New] unless
// the field's comment says what it means.
type Config struct {
	Auth   Authenticator
	Store  CodeStore
	Mailer Mailer

	// From is the sender, an RFC 5322 address such as
	// "Acme <no-reply@acme.example>".
	From string
	// SignupURL is the sign-up link template, an absolute http(s) URL with
	// {code} once, e.g. "https://acme.example/signup?ref={code}".
	SignupURL string

	// Templates renders the email. Default: the embedded templates
	// (mail.NewTemplates(nil)). New renders each language once with sample
	// data, so a broken template is an error here, not a failed invite.
	Templates *mail.Templates
	// ProductName names the host's product in the emails ("Alice invited
	// you to Acme"). Default: the display name of From, or else the host
	// name of SignupURL.
	ProductName string
	// ReferrerName, if set, gives the referrer's display name for the
	// email, given the invite about to be recorded; its ReferrerName holds
	// the name the Authenticator found (Principal.Name), if any. Return ""
	// when the name is unknown. The name is made one line of at most 100
	// bytes, and dropped if it looks like an address or a link. It is
	// called within the request and must not block for long.
	ReferrerName func(ctx context.Context, inv Invite) string
	// FromReferrer, if true, shows the referrer in the From display name
	// when the name is known: "Alice via Acme" <From's address>, with Acme
	// the ProductName. The address stays From's.
	FromReferrer bool

	// UserIDs is the rule user ids follow: UUIDs (the default) or
	// OpaqueIDs. App ids (Principal.AppID) follow it too, or are empty
	// for a host with one app.
	UserIDs IDs
	// Recipients protects the people invited (DESIGN section 7): their
	// suppression list, the secret of address hashes and unsubscribe
	// links, and retention; the stores of this module implement it beside
	// CodeStore, and it must be the same store. Required, with
	// UnsubscribeURL.
	Recipients RecipientStore
	// UnsubscribeURL is the unsubscribe link template, an absolute http(s)
	// URL with {token} once, where Handler.Unsubscribe is mounted, e.g.
	// "https://acme.example/v1/unsubscribe/{token}". Every invite carries
	// it in List-Unsubscribe (RFC 8058 one-click) and in both bodies.
	UnsubscribeURL string
	// Secret keys the address hashes and signs the unsubscribe links; at
	// least 32 random bytes, the same for every instance, never changed
	// (a new one orphans every suppression and link). Default: a secret
	// Recipients makes and keeps in the store on first use, which is
	// simplest but sits beside the hashes it keys.
	Secret []byte
	// MaxPerRecipient invites of one address, from all the app's
	// referrers, are sent within RecipientWindow; later ones are answered
	// as usual but recorded suppressed and not sent. Default 3; negative:
	// no limit.
	MaxPerRecipient int
	// RecipientWindow is the rolling window of MaxPerRecipient. Default
	// 30 days.
	RecipientWindow time.Duration
	// RetainAddresses is how long the address of an invite that was not
	// accepted is kept; then Run erases it, keeping its keyed hash so that
	// limits and suppression still hold. Default 180 days; negative: kept.
	RetainAddresses time.Duration

	// Referrers lists a user's invites and resends and revokes them (the
	// list on GET Pattern, ReferralCode, Invite and Resend, and the Handler
	// methods of the same names); the stores of this module implement it.
	// Nil: those answer ErrReferrersUnsupported.
	Referrers ReferrerStore
	// InviteTTL is how long a sent invite waits to be accepted: then its
	// referrer sees it expired, may resend it, and it no longer holds the
	// cooldown. Default 30 days; negative: never.
	InviteTTL time.Duration
	// MaxResends bounds the resends of one invite. Default 2; negative:
	// none.
	MaxResends int
	// ResendAfter is the least time between an invite's last send and a
	// resend. Default 24h; negative: none.
	ResendAfter time.Duration

	// Redemptions records sign-ups with a code (Handler.Redeem, Stats and
	// the Redemptions route); the stores of this module implement it
	// beside CodeStore. Nil: those answer ErrRedemptionUnsupported.
	Redemptions RedemptionStore

	// Delivery is Inline (the default) or Queued.
	Delivery DeliveryMode
	// SendTimeout bounds one delivery attempt. Default 15s.
	SendTimeout time.Duration

	// MaxInvitesPerReferrer within LimitWindow. Default 50; negative: no limit.
	MaxInvitesPerReferrer int
	// LimitWindow is the rolling window of MaxInvitesPerReferrer. Default 24h.
	LimitWindow time.Duration
	// Cooldown refuses the same address from the same referrer again for
	// this long. Default 7 days; negative: none.
	Cooldown time.Duration
	// IdempotencyTTL is how long an Idempotency-Key is remembered. Default
	// 24h; negative: the header is ignored.
	IdempotencyTTL time.Duration

	// MaxAttempts bounds queued delivery attempts per invite. Default 8.
	MaxAttempts int
	// RetryBackoff is the first retry delay of queued delivery; each
	// further one doubles it (with jitter) up to 1h. Default 30s.
	RetryBackoff time.Duration
	// WorkerBatch is how many invites the queued worker claims at once.
	// Default 64: a claim and the batch's last record each wait for a
	// commit, which under load is a busy handler's group commit.
	WorkerBatch int
	// Senders is how many of a claimed batch's messages the queued worker
	// sends at once; each outcome is recorded while the next messages go
	// out. One at a time, a worker waits for each server's answer in turn
	// and fell behind a busy handler (BENCHMARKS.md). The
	// claim's lease is (WorkerBatch/Senders, rounded up, +1) * SendTimeout.
	// Keep it at most the mailer's connections (smtp.Config.MaxConns,
	// default 4). A worker killed mid-batch may send again each message
	// whose server accepted it before its outcome was recorded: while
	// records wait for the store, the senders go on, so up to the batch.
	// Default 4.
	Senders int
	// PollInterval is how often the queued worker looks for due invites
	// when it found none. Default 1s.
	PollInterval time.Duration
	// MaxBacklog, with Queued delivery, bounds the invites this process
	// has queued ahead of its worker (Run, running in this process): an
	// invite request that finds MaxBacklog of them not yet claimed waits,
	// before its checks and its record, until the worker claims more (an
	// idle worker is woken), at most BacklogWait, and then goes ahead
	// anyway; so does one that is then replayed or refused by a limit.
	// Resends are not bounded. Under a load the worker
	// cannot keep pace with, intake then slows to what it delivers rather
	// than the queue growing without bound (BENCHMARKS.md). The bound is
	// per process and approximate: the worker counts every invite it
	// claims, its process's or another's, and forgets the backlog when it
	// finds none due. Default 0: no bound, every request is answered at
	// once, as without Run.
	MaxBacklog int
	// BacklogWait bounds a request's wait for the backlog (MaxBacklog).
	// Default 1s.
	BacklogWait time.Duration
	// OnOutcome, if set, is called after each final delivery outcome is
	// recorded (Status sent or failed), inline or queued, with an Invite
	// that holds what its event carries: ID, AppID, ReferrerID, Status,
	// UpdatedAt and, when sent, SentAt; never the address. It may be
	// called from several goroutines at once and must not block for long.
	//
	// Without an outbox (Config.Events) it is called right after the
	// commit, with the request's or the worker's context, and a crash in
	// between loses the call. With one, DeliverEvents (Run's event lane)
	// feeds it from the outbox: at least once, surviving a crash, so a
	// host that grants something on it dedupes by the invite's ID. An
	// invite revoked while its email was being sent comes with Status
	// sent without an outbox, and with StatusRevoked, the status the
	// store kept, from one; SentAt is set either way: the email went out.
	OnOutcome func(context.Context, Invite)
	// OnRedeemed, if set, is called for each new redemption recorded by
	// Handler.Redeem, so that the host can grant rewards, with a
	// Redemption holding AppID, ReferrerID, Code, NewUserID and CreatedAt
	// (never the address). Like OnOutcome it is called right after the
	// commit without an outbox, and from the outbox, at least once, with
	// one: dedupe by NewUserID, which is credited once. It must not block
	// for long. It needs Redemptions.
	OnRedeemed func(context.Context, Redemption)

	// Webhooks, if set, is sent every event of Config.Events (DESIGN
	// section 8) by Run's event lane, at least once, whatever the
	// delivery mode; webhook.Sender is one. It needs Events.
	Webhooks EventSender
	// Events is the store's outbox (the stores of this module have one,
	// off unless opened with it on). Required with Webhooks. When it
	// records events, Run's event lane delivers them (to Webhooks and the
	// hooks) and removes them, so run the worker, or call DeliverEvents,
	// also with Inline delivery.
	Events EventStore

	// Metrics, if set, gets the handler's Prometheus metrics:
	// referralkit_invites_total{result}, referralkit_deliveries_total{result},
	// referralkit_delivery_seconds, and with Queue referralkit_queue_depth and
	// referralkit_queue_oldest_seconds. Pass the host's registry, never
	// prometheus.DefaultRegisterer by accident: New fails if the names are
	// registered already.
	Metrics prometheus.Registerer
	// Queue reads the delivery queue's length for the queue gauges; the
	// stores of this module implement it. Nil: no queue gauges.
	Queue QueueStore

	// Logger receives one line per failed request and per delivery outcome,
	// with the request id; addresses and secrets are redacted. Default
	// slog.Default().
	Logger *slog.Logger
	// PathValue reads a path parameter ("userId", "code"). Default
	// r.PathValue(name); set it for routers that do not fill in net/http's
	// path values.
	PathValue func(r *http.Request, name string) string
	// LookupsPerMinute bounds GET /v1/referral-codes/{code} per client
	// address (IPv6 clients by their /64) and process, against enumeration. Default 60; negative: no
	// limit.
	LookupsPerMinute int
	// ClientAddr names the client for LookupsPerMinute. Default: the host
	// of r.RemoteAddr. Behind a proxy, set it to read the address the proxy
	// vouches for; never trust a header a client can set.
	ClientAddr func(r *http.Request) string

	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Handler serves the referral-invites route. Build it with [New].
type Handler struct {
	cfg      Config
	renderer *mail.Renderer
	link     mail.LinkTemplate
	fromAddr string // From's bare address
	// unsubscribe is the template of unsubscribe links; keys the secrets.
	unsubscribe mail.LinkTemplate
	keys        keys
	metrics     *metrics // nil: none
	outbox      bool     // Config.Events records events: hooks and webhooks are fed from them
	limits      Limits
	lookups     *windowLimiter // nil: code lookups are not limited
	backlog     *backlog       // nil: Config.MaxBacklog is off
}

// New checks cfg, fills in defaults and returns the handler.
func New(cfg Config) (*Handler, error) {
	var missing []error
	for _, f := range []struct {
		name  string
		unset bool
	}{
		{"Auth", cfg.Auth == nil},
		{"Store", cfg.Store == nil},
		{"Mailer", cfg.Mailer == nil},
		{"From", cfg.From == ""},
		{"SignupURL", cfg.SignupURL == ""},
		{"Recipients", cfg.Recipients == nil},
		{"UnsubscribeURL", cfg.UnsubscribeURL == ""},
	} {
		if f.unset {
			missing = append(missing, fmt.Errorf("referral: Config.%s is required", f.name))
		}
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("referral: Config.From: %w", err)
	}
	link, err := mail.ParseLinkTemplate(cfg.SignupURL)
	if err != nil {
		return nil, fmt.Errorf("referral: Config.SignupURL: %w", err)
	}
	if cfg.Delivery != Inline && cfg.Delivery != Queued {
		return nil, fmt.Errorf("referral: Config.Delivery: unknown mode %d", cfg.Delivery)
	}
	if cfg.UserIDs != UUIDs && cfg.UserIDs != OpaqueIDs {
		return nil, fmt.Errorf("referral: Config.UserIDs: unknown rule %d", cfg.UserIDs)
	}
	outbox := cfg.Events != nil && cfg.Events.Outbox()
	if cfg.Webhooks != nil && !outbox {
		return nil, ErrNoOutbox
	}
	if cfg.OnRedeemed != nil && cfg.Redemptions == nil {
		return nil, errors.New("referral: Config.OnRedeemed needs Config.Redemptions")
	}
	if cfg.ProductName == "" {
		cfg.ProductName = defaultProductName(from, cfg.SignupURL)
	}
	if cfg.ProductName != oneLine(cfg.ProductName) || cfg.ProductName == "" || strings.ContainsAny(cfg.ProductName, "@<>") {
		return nil, errors.New("referral: Config.ProductName must be one line of at most 100 bytes, without an address")
	}
	if cfg.Templates == nil {
		if cfg.Templates, err = mail.NewTemplates(nil); err != nil {
			return nil, err
		}
	}
	renderer, err := mail.NewRenderer(cfg.Templates, link)
	if err != nil {
		return nil, err
	}
	// Every language once as this handler will render it, with and without
	// a referrer's name: a template that fails is an error here, not a 500
	// for every invite (each counted against the sender's limit).
	for _, lang := range cfg.Templates.Languages() {
		for _, name := range []string{"", "Alice"} {
			if _, err := renderer.Render(lang, mail.Data{Code: "ABCDEFGHJK", ReferrerName: name, ProductName: cfg.ProductName}); err != nil {
				return nil, fmt.Errorf("referral: Config.Templates: %w", err)
			}
		}
	}
	setDefault(&cfg.SendTimeout, 15*time.Second)
	setDefault(&cfg.MaxInvitesPerReferrer, 50)
	setDefault(&cfg.LimitWindow, 24*time.Hour)
	setDefault(&cfg.Cooldown, 7*24*time.Hour)
	setDefault(&cfg.InviteTTL, 30*24*time.Hour)
	setDefault(&cfg.MaxResends, 2)
	setDefault(&cfg.ResendAfter, 24*time.Hour)
	setDefault(&cfg.MaxPerRecipient, 3)
	setDefault(&cfg.RecipientWindow, 30*24*time.Hour)
	setDefault(&cfg.RetainAddresses, 180*24*time.Hour)
	setDefault(&cfg.IdempotencyTTL, 24*time.Hour)
	setDefault(&cfg.MaxAttempts, 8)
	setDefault(&cfg.RetryBackoff, 30*time.Second)
	setDefault(&cfg.WorkerBatch, 64)
	setDefault(&cfg.Senders, 4)
	setDefault(&cfg.PollInterval, time.Second)
	setDefault(&cfg.BacklogWait, time.Second)
	setDefault(&cfg.LookupsPerMinute, 60)
	// Negative means "disabled" only where the field's doc says so; any
	// other negative value would panic or spin in a worker goroutine.
	var bad []error
	for _, f := range []struct {
		name string
		ok   bool
	}{
		{"SendTimeout", cfg.SendTimeout > 0},
		{"LimitWindow", cfg.LimitWindow > 0},
		{"MaxAttempts", cfg.MaxAttempts > 0},
		{"RetryBackoff", cfg.RetryBackoff > 0},
		{"WorkerBatch", cfg.WorkerBatch > 0},
		{"Senders", cfg.Senders > 0},
		{"PollInterval", cfg.PollInterval > 0},
		{"BacklogWait", cfg.BacklogWait > 0},
		{"RecipientWindow", cfg.RecipientWindow > 0},
	} {
		if !f.ok {
			bad = append(bad, fmt.Errorf("referral: Config.%s must be positive (zero for the default)", f.name))
		}
	}
	if cfg.MaxBacklog < 0 {
		bad = append(bad, errors.New("referral: Config.MaxBacklog must not be negative (zero for no bound)"))
	}
	if err := errors.Join(bad...); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PathValue == nil {
		cfg.PathValue = (*http.Request).PathValue
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClientAddr == nil {
		cfg.ClientAddr = remoteHost
	}
	unsubscribe, k, err := recipientKeys(cfg)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Metrics, cfg.Queue, cfg.Now)
	if err != nil {
		return nil, err
	}
	var lookups *windowLimiter
	if cfg.LookupsPerMinute > 0 {
		lookups = newWindowLimiter(cfg.LookupsPerMinute, time.Minute)
	}
	return &Handler{
		cfg:         cfg,
		renderer:    renderer,
		link:        link,
		fromAddr:    from.Address,
		unsubscribe: unsubscribe,
		keys:        k,
		metrics:     m,
		outbox:      outbox,
		lookups:     lookups,
		backlog:     newBacklog(cfg),
		limits: Limits{
			MaxPerReferrer:  max(cfg.MaxInvitesPerReferrer, 0),
			Window:          cfg.LimitWindow,
			Cooldown:        cooldown(cfg),
			IdempotencyTTL:  max(cfg.IdempotencyTTL, 0),
			MaxPerRecipient: max(cfg.MaxPerRecipient, 0),
			RecipientWindow: cfg.RecipientWindow,
		},
	}, nil
}

// cooldown is the same-address cooldown a store checks: an invite that
// expired no longer holds it.
func cooldown(cfg Config) time.Duration {
	c := max(cfg.Cooldown, 0)
	if cfg.InviteTTL > 0 {
		c = min(c, cfg.InviteTTL)
	}
	return c
}

// minSecret is the least length of Config.Secret, in bytes.
const minSecret = 32

// recipientKeys checks the unsubscribe link template and derives the keys
// from Config.Secret, or from the store's secret, which it reads (or makes)
// here: once, so that no request waits for it.
func recipientKeys(cfg Config) (mail.LinkTemplate, keys, error) {
	unsubscribe, err := mail.ParseUnsubscribeTemplate(cfg.UnsubscribeURL)
	if err != nil {
		return mail.LinkTemplate{}, keys{}, fmt.Errorf("referral: Config.UnsubscribeURL: %w", err)
	}
	secret := cfg.Secret
	switch {
	case len(secret) > 0 && len(secret) < minSecret:
		return mail.LinkTemplate{}, keys{}, fmt.Errorf("referral: Config.Secret must be at least %d bytes", minSecret)
	case len(secret) == 0:
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		secret, err = cfg.Recipients.Secret(ctx, "referral", func() []byte {
			b := make([]byte, minSecret)
			rand.Read(b)
			return b
		})
		if err != nil {
			return mail.LinkTemplate{}, keys{}, fmt.Errorf("referral: reading the store's secret: %w", err)
		}
		if len(secret) < minSecret {
			return mail.LinkTemplate{}, keys{}, errors.New("referral: the store's secret is too short")
		}
	}
	return unsubscribe, deriveKeys(secret), nil
}

// defaultProductName is From's display name, or else the sign-up link's
// host.
func defaultProductName(from *netmail.Address, signupURL string) string {
	if name := oneLine(from.Name); name != "" && !strings.ContainsAny(name, "@<>") {
		return name
	}
	if u, err := url.Parse(signupURL); err == nil {
		return u.Hostname()
	}
	return ""
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}
