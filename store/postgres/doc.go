// Package postgres is the referral.CodeStore, referral.RedemptionStore,
// referral.RecipientStore, referral.ReferrerStore, referral.QueueStore, auth.KeyStore and auth.KeyManager for host apps that run several instances
// on one PostgreSQL database, through github.com/jackc/pgx/v5. One
// redemption per new user holds across processes (the redemptions table's
// primary key).
//
// [Open] takes a URL and makes a pool the store owns; [New] takes a
// *pgxpool.Pool the caller owns. Both apply the schema first;
// [NewWithOptions] can check it instead (see Schema below).
//
// Concurrency: every check of the contract holds across connections and
// processes. RecordInvite takes a transaction-scoped advisory lock on the
// referrer (pg_advisory_xact_lock) before it checks the idempotency key, the
// limit and the cooldown and inserts, in one transaction of two round trips,
// so that no race lets more invites through than a limit allows; invites of
// different referrers do not wait for each other's locks. Concurrent calls
// of one Store share such transactions (group commit): the invites that
// queued while the last ones were being recorded are checked and inserted
// by one statement, those of one referrer or one address in different
// transactions, so each counts the others exactly as alone. An invite with an
// AddressHash also takes a lock on (app, AddressHash) for the recipient
// limit and the suppression list, which Suppress takes too: an invite
// recorded while its address is being suppressed is either recorded
// suppressed or marked so, never left to send. Resend takes the same two
// locks, the referrer's and then the address's, and then the invite's
// row, so that resends and new invites count each other exactly. Secret inserts with ON
// CONFLICT DO NOTHING and reads what stands. ClaimDue claims with FOR UPDATE SKIP
// LOCKED and a lease, so that workers in several processes never get one
// invite at the same time. EnsureCode relies on the unique keys of the codes
// table: a code taken by another user is retried with a new one, and
// concurrent first calls for one user all return the code the first insert
// stored.
//
// Tables: every table and index the store creates starts with referral_:
// referral_codes, referral_invites, referral_apps, referral_api_keys,
// referral_redemptions, referral_suppressions (the addresses each app never
// emails again, by keyed hash: the address itself is not kept),
// referral_secrets (the secret that keys those hashes and signs
// unsubscribe links) and referral_schema_migrations, which records the
// applied migrations. Besides the address and delivery state,
// referral_invites keeps for the referrer's side when an invite was last
// sent (sent_at), how often the referrer had it resent and when last
// (resends, resent_at; migration 0006), and when RecordInvite last
// reclaimed it failed for an inline retry (reclaimed_at; migration 0009),
// so that Queue measures a pending invite's wait from when it last
// entered the queue; referral_invites_by_referrer
// gives the listing its order and referral_invites_resent lets the
// referrer limit count resends. So the store can share a host's database and schema
// beside the host's tables, say invites, users or golang-migrate's
// schema_migrations, which it never reads, alters or drops.
//
// Schema: the SQL files under migrations/ are embedded and applied in the
// order of their numeric prefix (0001_x.sql, 0002_y.sql, ...), each once,
// recorded in referral_schema_migrations, all in one transaction that holds
// an advisory lock on the schema: instances starting at once apply each file
// once. Tables go in the first schema of the connections' search_path, so
// several stores can share a database in schemas of their own (set
// search_path in the URL or the pool's RuntimeParams). A schema of the
// earlier builds, whose tables had no prefix (codes, invites, ..., recorded
// in a schema_migrations table with the columns version, name and applied_at
// and this package's file names), has its tables moved to the prefixed
// names, rows and all, in that same transaction.
//
// Hosts that migrate with their own tool apply schema.sql, published in
// this package's folder and as [Schema], to a schema without the store's
// tables: the whole schema as the migrations leave it, ending with the rows
// that record them in referral_schema_migrations. To upgrade, they apply
// the files of a new release that the schema lacks, in order, from
// migrations/ or [Migrations]: the first file creates
// referral_schema_migrations and each ends by recording itself there, so
// the files alone, run in order, do as well as schema.sql. They open the
// store with [NewWithOptions](ctx, pool, [Options]{SkipMigrations: true}),
// which changes no table and fails with [ErrSchema], naming what is
// missing, unless every migration of this build is recorded. A later [New]
// without the option finds them recorded and applies only newer ones. A
// schema of the builds without the prefix is opened once without the
// option, to move its tables: SkipMigrations refuses it and says so, since
// schema.sql would make empty tables beside the old ones.
//
// The move to the prefix is one-way: it drops the old tables and their
// schema_migrations, so a build from before the prefix, started on the
// schema afterwards, finds it empty and starts afresh without a word. Back
// the schema up (pg_dump) before the upgrade to go back to such a build.
// No rolling deploy across it either: stop every instance of the old build
// before the first instance of this one starts, since the first New moves
// the tables and the old instances' statements then fail. If an older
// build did run on the moved schema and recorded rows, [New] then refuses
// it with [ErrSchema], naming the old tables, rather than leave those rows
// unread.
//
// User and app ids are stored as given and compared byte by byte (COLLATE
// "C"): opaque ids ("42", "alice.smith"), case-sensitive, and an empty app
// id for a single-tenant host, work as UUIDs do.
//
// Times are timestamptz: they come back in UTC, with microsecond precision.
//
// Cancellation: every method returns when its context ends, with an error
// that matches the context's. RecordInvite commits only after its checks
// and insert came back, so a call that gives up before then stores nothing
// (in a shared transaction, its row is deleted before the commit);
// one cancelled while its commit is under way may still have stored its
// work, as with any database. A pool made by Open also sends the server a
// cancel request when a context ends, so that a statement waiting for a lock
// stops at once instead of holding its connection until it gets the lock
// (callers of New choose for their pool:
// pgconn.CancelRequestContextWatcherHandler).
package postgres
