package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/store/sqlite"
)

// childDBEnv names the database file of the server that
// TestDurabilityServer runs when TestDurabilityAfterKill starts it.
const childDBEnv = "REFERRALKIT_SQLITE_DURABILITY_DB"

// modesDBEnv names the database file that TestFileModesChild makes when
// TestFileModes starts it.
const modesDBEnv = "REFERRALKIT_SQLITE_MODES_DB"

// TestFileModesChild is not a test of its own: it is the child process of
// TestFileModes, run under umask 000. It opens a new store, writes to it,
// and prints the mode of each file of the database while it is open.
func TestFileModesChild(t *testing.T) {
	path := os.Getenv(modesDBEnv)
	if path == "" {
		t.Skip("the child process of TestFileModes")
	}
	s, err := sqlite.Open(path)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Write(t.Context(), insertApp(uuid.NewString())))
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(name)
		require.NoError(t, err)
		fmt.Printf("MODE %s %#o\n", filepath.Base(name), info.Mode().Perm())
	}
}

// TestFileModes checks that the files of a database Open creates are
// readable by their owner only, even under a umask that takes nothing
// away: they hold the invitees' addresses and the API keys' hashes.
func TestFileModes(t *testing.T) {
	if os.Getenv(modesDBEnv) != "" {
		t.Skip("inside the child process")
	}
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to set the umask with:", err)
	}
	path := filepath.Join(t.TempDir(), "referral.db")
	cmd := exec.Command(sh, "-c", `umask 000 && exec "$0" -test.run='^TestFileModesChild$' -test.v`, os.Args[0])
	cmd.Env = append(os.Environ(), modesDBEnv+"="+path)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	modes := map[string]string{}
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "MODE" {
			modes[f[1]] = f[2]
		}
	}
	assert.Equal(t, map[string]string{"referral.db": "0600", "referral.db-wal": "0600", "referral.db-shm": "0600"}, modes, "%s", out)
}

// TestDurabilityServer is not a test of its own: it is the child process of
// TestDurabilityAfterKill, a server on the SQLite file named by childDBEnv
// that prints its address and runs until killed (or until its parent goes
// away, or a minute has passed, so that it never outlives a failed test).
func TestDurabilityServer(t *testing.T) {
	path := os.Getenv(childDBEnv)
	if path == "" {
		t.Skip("the child process of TestDurabilityAfterKill")
	}
	s, err := sqlite.Open(path)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() {
		io.Copy(io.Discard, os.Stdin) // until the parent closes it or dies
		os.Exit(1)
	}()
	time.AfterFunc(time.Minute, func() { os.Exit(1) })
	fmt.Printf("ADDR %s\n", ln.Addr())
	http.Serve(ln, newHandler(t, s))
}

// TestDurabilityAfterKill kills a server with SIGKILL while requests are in
// flight and checks that every invite it answered 201 is in the file.
func TestDurabilityAfterKill(t *testing.T) {
	if os.Getenv(childDBEnv) != "" {
		t.Skip("inside the child process")
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "referral.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityServer$")
	cmd.Env = append(os.Environ(), childDBEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })

	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addr <- a
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("the child server did not start")
	}

	// Workers send invites until killAfter have been answered 201; the
	// first worker to see that kills the server while the others' requests
	// are still in flight.
	const (
		workers   = 8
		killAfter = 60
		maxSent   = 400 // bounds the loop if the kill never comes
	)
	client := &http.Client{Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var (
		mu       sync.Mutex
		accepted []string // emails answered 201
		sent     int
		killed   bool
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			user := uuid.NewString() // 50 a day each: one referrer per worker stays under it
			for i := 0; ; i++ {
				mu.Lock()
				stop := killed || sent >= maxSent
				sent++
				mu.Unlock()
				if stop || ctx.Err() != nil {
					return
				}
				email := fmt.Sprintf("w%d-%d@example.com", w, i)
				body := `{"email": "` + email + `", "language": "en"}`
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/users/"+user+"/referral-invites", strings.NewReader(body))
				if !assert.NoError(t, err) {
					return
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					continue // the server is gone
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					continue
				}
				mu.Lock()
				accepted = append(accepted, email)
				if len(accepted) >= killAfter && !killed {
					killed = true
					assert.NoError(t, cmd.Process.Kill()) // SIGKILL
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.True(t, killed, "the server answered only %d invites with 201", len(accepted))
	_ = cmd.Wait()

	s, err := sqlite.Open(path)
	require.NoError(t, err)
	defer s.Close()
	invites, err := s.Invites(t.Context())
	require.NoError(t, err)
	stored := map[string]bool{}
	for _, inv := range invites {
		stored[inv.Email] = true
	}
	for _, email := range accepted {
		assert.True(t, stored[email], "%s was answered 201 but is not in the database", email)
	}
	t.Logf("%d invites answered 201, %d rows after SIGKILL", len(accepted), len(invites))
}
