package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/sqlite"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "referralkit-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := sqlite.Open(filepath.Join(dir, "referral.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	app, user := "0190a5e4-2b7c-7e4a-9b1e-3f6d2c8a4b10", "4f1c2d9e-8a7b-4c3d-9e2f-1a0b9c8d7e6f"
	code, err := s.EnsureCode(ctx, app, user, func() string { return "A1B0C2D3E4" })
	if err != nil {
		log.Fatal(err)
	}
	// The store compares codes exactly: NormalizeCode reads them however a
	// person types them.
	typed, _ := referral.NormalizeCode("albo-c2d3-e4")
	owner, err := s.ResolveCode(ctx, typed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(code, owner.UserID == user)
	// Output: A1B0C2D3E4 true
}

// A host app shares its own database with the store: the store's tables
// all start with referral_, and the host's invites table is left alone.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "referralkit-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The host's database, with the pragmas the store relies on.
	db, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(dir, "app.db")))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE invites (id INTEGER PRIMARY KEY, email TEXT)`); err != nil {
		log.Fatal(err)
	}

	s, err := sqlite.New(db)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close() // leaves db open: the host owns it

	// A single-tenant host with integer user ids.
	code, err := s.EnsureCode(context.Background(), "", "42", func() string { return "A1B0C2D3E4" })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(code)

	rows, err := db.Query(`SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name`)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			log.Fatal(err)
		}
		fmt.Println(name)
	}
	// Output:
	// A1B0C2D3E4
	// invites
	// referral_api_keys
	// referral_apps
	// referral_codes
	// referral_events
	// referral_invites
	// referral_redemptions
	// referral_schema_migrations
	// referral_secrets
	// referral_suppressions
}

// A host that runs its own migration tool applies schema.sql (here
// sqlite.Schema) and opens the store without migrating.
func ExampleNewWithOptions() {
	dir, err := os.MkdirTemp("", "referralkit-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(dir, "app.db")))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	_, err = sqlite.NewWithOptions(db, sqlite.Options{SkipMigrations: true})
	fmt.Println(errors.Is(err, sqlite.ErrSchema))

	if _, err := db.Exec(sqlite.Schema); err != nil { // the host's tool would do this
		log.Fatal(err)
	}
	s, err := sqlite.NewWithOptions(db, sqlite.Options{SkipMigrations: true})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	fmt.Println("opened")
	// Output:
	// true
	// opened
}
