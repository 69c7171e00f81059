package main

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// migrations are the app's own schema, version i+1 at index i, applied
// golang-migrate style: schema_migrations holds one row, the current
// version. The referral store keeps its own referral_schema_migrations.
var migrations = []string{
	`CREATE TABLE users (
		id            INTEGER PRIMARY KEY,
		email         TEXT    NOT NULL UNIQUE,
		name          TEXT    NOT NULL,
		password_hash TEXT    NOT NULL,
		referred_by   INTEGER NULL REFERENCES users (id)
	);
	-- Team invitations: a teammate asked onto a board. Nothing to do with
	-- referrals, but the same name as a table a referral library might want.
	CREATE TABLE invites (
		id         INTEGER PRIMARY KEY,
		team       TEXT    NOT NULL,
		email      TEXT    NOT NULL,
		invited_by INTEGER NOT NULL REFERENCES users (id),
		created_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
	);`,
}

// migrate brings the app's tables to the latest version.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version bigint  NOT NULL PRIMARY KEY,
		dirty   boolean NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var (
		version int
		dirty   bool
	)
	err = tx.QueryRowContext(ctx, `SELECT version, dirty FROM schema_migrations`).Scan(&version, &dirty)
	switch {
	case errors.Is(err, sql.ErrNoRows): // a new database
	case err != nil:
		return fmt.Errorf("migrate: %w", err)
	case dirty:
		return fmt.Errorf("migrate: version %d is dirty: fix the schema by hand", version)
	}
	if version >= len(migrations) {
		return nil
	}
	for v := version + 1; v <= len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("migrate: version %d: %w", v, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_migrations`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, dirty) VALUES (?, false)`, len(migrations)); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// user is a row of users.
type user struct {
	ID    int64
	Email string
	Name  string
}

// errEmailTaken: someone signed up with that address already.
var errEmailTaken = errors.New("users: email already registered")

// createUser adds a user and returns their id.
func createUser(ctx context.Context, db *sql.DB, email, name, password string) (int64, error) {
	hash, err := hashPassword(password)
	if err != nil {
		return 0, err
	}
	var id int64
	err = db.QueryRowContext(ctx, `INSERT INTO users (email, name, password_hash) VALUES (?, ?, ?)
		ON CONFLICT (email) DO NOTHING RETURNING id`, normalizeEmail(email), name, hash).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errEmailTaken
	}
	if err != nil {
		return 0, fmt.Errorf("users: create: %w", err)
	}
	return id, nil
}

// userByID returns the user, with found=false if there is none.
func userByID(ctx context.Context, db *sql.DB, id int64) (u user, found bool, err error) {
	err = db.QueryRowContext(ctx, `SELECT id, email, name FROM users WHERE id = ?`, id).Scan(&u.ID, &u.Email, &u.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return user{}, false, nil
	}
	if err != nil {
		return user{}, false, fmt.Errorf("users: %w", err)
	}
	return u, true, nil
}

// checkPassword returns the id of the user with that email and password,
// with ok=false if there is none.
func checkPassword(ctx context.Context, db *sql.DB, email, password string) (id int64, ok bool, err error) {
	var hash string
	err = db.QueryRowContext(ctx, `SELECT id, password_hash FROM users WHERE email = ?`, normalizeEmail(email)).Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("users: %w", err)
	}
	return id, passwordMatches(hash, password), nil
}

// setReferredBy records who referred user id.
func setReferredBy(ctx context.Context, db *sql.DB, id, referrer int64) error {
	if _, err := db.ExecContext(ctx, `UPDATE users SET referred_by = ? WHERE id = ?`, referrer, id); err != nil {
		return fmt.Errorf("users: %w", err)
	}
	return nil
}

func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Passwords are kept as "salt:key" in hex, the key PBKDF2-SHA256 with
// OWASP's iteration count: the standard library alone.
const pbkdf2Iterations = 600_000

func hashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	rand.Read(salt)
	key, err := pbkdf2.Key(sha256.New, password, salt, pbkdf2Iterations, 32)
	if err != nil {
		return "", fmt.Errorf("users: password: %w", err)
	}
	return hex.EncodeToString(salt) + ":" + hex.EncodeToString(key), nil
}

func passwordMatches(hash, password string) bool {
	saltHex, keyHex, _ := strings.Cut(hash, ":")
	salt, err1 := hex.DecodeString(saltHex)
	want, err2 := hex.DecodeString(keyHex)
	if err1 != nil || err2 != nil {
		return false
	}
	got, err := pbkdf2.Key(sha256.New, password, salt, pbkdf2Iterations, len(want))
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}
