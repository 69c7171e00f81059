package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"referral.db", "referral.db"},
		{"postgres://alice:hunter2@db.example:5432/app", "postgres://alice:xxxxx@db.example:5432/app"},
		{"postgres://alice@db.example/app?sslmode=require&password=hunter2", "postgres://alice@db.example/app?sslmode=require&password=xxxxx"},
		{"postgres://alice@db.example/app?PassWord=hunter2&sslpassword=x%20y", "postgres://alice@db.example/app?PassWord=xxxxx&sslpassword=xxxxx"},
		{"postgres://alice@db.example/app", "postgres://alice@db.example/app"},
		{"postgres://alice:p%40ss@db.example/app", "postgres://alice:xxxxx@db.example/app"},
		{"postgres://alice:hunter2@db.example:port/app", "postgres://xxxxx"},
		{"https://app.example/hooks?v=2&token=abc&Signature=s", "https://app.example/hooks?v=2&token=xxxxx&Signature=xxxxx"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, redactURL(tt.in), tt.in)
	}
}

// TestDatabasePasswordNeverPrinted: when the database is unreachable, or
// its URL does not parse, neither the server nor a subcommand prints the
// password, wherever the URL carries it.
func TestDatabasePasswordNeverPrinted(t *testing.T) {
	t.Parallel()
	dbs := []string{
		"postgres://alice:hunter2@127.0.0.1:1/db",
		"postgres://alice@127.0.0.1:1/db?password=hunter2",
		"postgresql://alice:hunter2@127.0.0.1:1/db?sslmode=disable&password=hunter2&sslpassword=hunter2",
		"postgres://alice:hunter%32@127.0.0.1:1/db", // hunter2, escaped
		"postgres://alice:hunter2@127.0.0.1:port/db?password=hunter2",
	}
	commands := map[string][]string{
		"serve":     {"-addr", "127.0.0.1:0"},
		"keys list": {"keys", "list", "-app", "0b0f7c1e-6a55-4c6e-9d7e-5a1f2b3c4d5e"},
	}
	for _, db := range dbs {
		for name, args := range commands {
			t.Run(name+" "+db, func(t *testing.T) {
				t.Parallel()
				var stdout, stderr bytes.Buffer
				args := append(append([]string{}, args...), "-db", db)
				if name == "serve" {
					args = append(args, "-maildir", t.TempDir())
				}
				code := run(context.Background(), args, func(string) string { return "" }, &stdout, &stderr)
				assert.NotEqual(t, 0, code)
				out := stdout.String() + stderr.String()
				assert.NotContains(t, out, "hunter")
				assert.Contains(t, out, "referral server:")
			})
		}
	}
}
