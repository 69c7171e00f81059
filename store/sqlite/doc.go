// Package sqlite is the default store: referral.CodeStore,
// referral.RedemptionStore, referral.RecipientStore,
// referral.ReferrerStore, referral.QueueStore, auth.KeyStore and
// auth.KeyManager in one SQLite file, through the pure-Go driver modernc.org/sqlite (driver name
// "sqlite"), so that the library needs no C toolchain.
//
// [Open] is the common case: it opens a file with the pragmas the store
// relies on and applies the schema. [New] takes a *sql.DB the caller owns
// and opened with the "sqlite" driver, such as the host app's own database;
// the caller should give every pooled connection the same pragmas (see
// [DSN]). [NewWithOptions] can check the schema instead of applying it (see
// Schema below).
//
// Durability: every accepted invite is committed before the handler answers.
// Open uses WAL with synchronous=FULL, so that a commit is synced to the WAL
// file: a 201 survives the process being killed and the machine losing
// power. (synchronous=NORMAL would survive only the former.)
//
// Concurrency: the store runs one write transaction at a time and starts
// each with BEGIN IMMEDIATE, so that concurrent requests in this process
// queue instead of failing with SQLITE_BUSY, and writers in other processes
// sharing the file wait on busy_timeout. Reads run in parallel. Writes that
// come while a transaction runs share it or the next one (group commit):
// each runs after the one before it in the same transaction, inside a
// savepoint of its own, so its checks see every invite recorded before it
// and its failure undoes only its own work; and none of them returns before
// the COMMIT, so a 201 still means a synced row. One fsync then covers a
// whole batch, which is what lets RecordInvite, with its checks, outrun
// plain one-row inserts. RecordInvite runs its checks and its insert in one
// such transaction, which makes the limits hold across processes: the
// recipient limit and the suppression list too, which Suppress changes in
// a write transaction of its own. Resend runs its checks and its update in
// one such transaction too, so that resends and new invites count each
// other exactly; Revoke reads and changes the invite in one as well.
//
// Files: a database file Open creates is readable by its owner only
// (0600), and so are the -wal and -shm files SQLite keeps beside it. A file
// the process cannot write opens read-only if its directory is writable
// (SQLite creates the -shm file there even for reads): reads work, writes
// fail with an error, so the handler answers 500. In a read-only directory
// Open fails, saying why. [Store.CheckWrite] tells a health check whether
// writes get through; [Store.Ping] passes on a read-only file.
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
// reclaimed it failed for an inline retry (reclaimed_at; migration 0008),
// so that Queue measures a pending invite's wait from when it last
// entered the queue; referral_invites_by_referrer
// gives the listing its order and referral_invites_resent lets the
// referrer limit count resends. So the store can share a host's own database (see
// [New]) beside the host's tables, say invites, users or golang-migrate's
// schema_migrations, which it never reads, alters or drops.
//
// Schema: the SQL files under migrations/ are embedded and applied in the
// order of their numeric prefix (0001_x.sql, 0002_y.sql, ...), each once,
// recorded in referral_schema_migrations. Applying them takes the write
// lock of the database, so two processes starting at once apply each file
// once. A migration file must not contain BEGIN or COMMIT. A database of
// the earlier builds, whose tables had no prefix (codes, invites, ...,
// recorded in a schema_migrations table with the columns version, name and
// applied_at and this package's file names), has its tables moved to the
// prefixed names, rows and all, in the same transaction that applies the
// newer migrations.
//
// Hosts that migrate with their own tool apply schema.sql, published in
// this package's folder and as [Schema], to a fresh database: the whole
// schema as the migrations leave it, ending with the rows that record them
// in referral_schema_migrations. To upgrade, they apply the files of a new
// release that the database lacks, in order, from migrations/ or
// [Migrations]: the first file creates referral_schema_migrations and each
// ends by recording itself there, so the files alone, run in order on a
// fresh database, do as well as schema.sql. They open the store with
// [NewWithOptions](db, [Options]{SkipMigrations: true}), which changes no
// table and fails with [ErrSchema], naming what is missing, unless every
// migration of this build is recorded. A later [New] without the option
// finds them recorded and applies only newer ones. A database of the
// builds without the prefix is opened once without the option, to move
// its tables: SkipMigrations refuses it and says so, since schema.sql
// would make empty tables beside the old ones.
//
// The move to the prefix is one-way: it drops the old tables and their
// schema_migrations, so a build from before the prefix, opened on the
// database afterwards, finds it empty and starts afresh without a word.
// Keep a copy of the file from before the upgrade to go back to such a
// build. Stop the processes of such a build that share the file before the
// first process of this one opens it: their statements fail once the
// tables are moved. If an older build did run on the moved database and
// recorded rows, [New] then refuses it with [ErrSchema], naming the old
// tables, rather than leave those rows unread.
//
// User and app ids are stored as given and compared byte by byte: opaque
// ids ("42", "alice.smith"), case-sensitive, and an empty app id for a
// single-tenant host, work as UUIDs do.
//
// Times are stored as unix milliseconds in UTC: they come back in UTC with
// millisecond precision.
//
// [Store.Invites] reads every invite back, for tests and inspection.
package sqlite
