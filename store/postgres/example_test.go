package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/postgres"
)

// What a server needs of its store, as examples/server declares it: Store
// is all of it.
var _ interface {
	referral.CodeStore
	auth.KeyStore
	auth.KeyManager
	Ping(ctx context.Context) error
	Close() error
} = (*postgres.Store)(nil)

// Every instance of the app opens the same database; the first to start
// applies the schema, the others wait for it.
func ExampleOpen() {
	ctx := context.Background()
	// e.g. postgres://referral:secret@db.internal:5432/referral?pool_max_conns=20
	s, err := postgres.Open(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	code, err := s.EnsureCode(ctx, "0190a5e4-2b7c-7e4a-9b1e-3f6d2c8a4b10", "0190a5e4-2b7c-7e4a-9b1e-000000000001", referral.NewCode)
	if err != nil {
		log.Fatal(err)
	}
	owner, err := s.ResolveCode(ctx, code)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(owner.UserID)
}

// A host that runs its own migration tool applies schema.sql (here
// postgres.Schema) and opens the store on its own pool without migrating.
// Without output: it needs a server.
func ExampleNewWithOptions() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	// What the host's migration tool does, once.
	if _, err := pool.Exec(ctx, postgres.Schema); err != nil {
		log.Fatal(err)
	}
	s, err := postgres.NewWithOptions(ctx, pool, postgres.Options{SkipMigrations: true})
	if errors.Is(err, postgres.ErrSchema) {
		log.Fatal("apply schema.sql first: ", err)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
}
