package sqlite_test

import (
	"context"
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
