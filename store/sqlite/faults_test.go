package sqlite_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/sqlite"
)

// seed makes a database file at path holding one invite from user, and
// returns its path.
func seed(t *testing.T, user string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "referral.db")
	s, err := sqlite.Open(path)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, post(t, newHandler(t, s), user, "seed@example.com").Code)
	require.NoError(t, s.Close())
	return path
}

// checkConsistent opens path without any fault and checks that it is
// intact and that every invite is whole: all fields set and its code the
// one its referrer has. It returns the number of invites.
func checkConsistent(t *testing.T, path string) int {
	t.Helper()
	db := rawDB(t, path)
	var check string
	require.NoError(t, db.QueryRow(`PRAGMA integrity_check`).Scan(&check))
	require.Equal(t, "ok", check)
	var orphans int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM referral_invites i
		WHERE i.id = '' OR i.email = '' OR i.email_key = '' OR i.language = ''
		   OR NOT EXISTS (SELECT 1 FROM referral_codes c WHERE c.app_id = i.app_id AND c.user_id = i.referrer_id AND c.code = i.code)`).Scan(&orphans))
	assert.Zero(t, orphans, "invites without their code or with empty fields")
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM referral_invites`).Scan(&n))
	return n
}

func TestClosedDatabaseAnswers500(t *testing.T) {
	t.Parallel()
	user := uuid.NewString()
	path := seed(t, user)
	s, err := sqlite.Open(path)
	require.NoError(t, err)
	h := newHandler(t, s)
	require.NoError(t, s.Close())
	for _, u := range []string{user, uuid.NewString()} {
		assert.Equal(t, http.StatusInternalServerError, post(t, h, u, "ann@example.com").Code)
	}
	assert.Equal(t, 1, checkConsistent(t, path))
}

func TestReadOnlyDatabaseAnswers500(t *testing.T) {
	t.Parallel()
	user := uuid.NewString()
	path := seed(t, user)
	// mode=ro holds even for root, whom file permissions do not stop.
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer db.Close()
	s, err := sqlite.New(db)
	require.NoError(t, err, "an up-to-date file opens read-only")
	h := newHandler(t, s)
	for _, c := range []struct{ name, user string }{
		{"referrer with a code: the invite cannot be written", user},
		{"new referrer: the code cannot be written", uuid.NewString()},
	} {
		assert.Equal(t, http.StatusInternalServerError, post(t, h, c.user, "ann@example.com").Code, c.name)
	}
	require.NoError(t, db.Close())
	assert.Equal(t, 1, checkConsistent(t, path))
}

func TestFullDiskAnswers500(t *testing.T) {
	t.Parallel()
	path := seed(t, uuid.NewString())
	var pages int
	require.NoError(t, rawDB(t, path).QueryRow(`PRAGMA page_count`).Scan(&pages))
	// max_page_count is per connection: the DSN gives it to every pooled
	// one. A few pages past the schema fill up within some dozens of
	// invites.
	db, err := sql.Open("sqlite", sqlite.DSN(path)+fmt.Sprintf("&_pragma=max_page_count(%d)", pages+3))
	require.NoError(t, err)
	defer db.Close()
	s, err := sqlite.New(db)
	require.NoError(t, err)
	h := newHandler(t, s)

	var created, failed int
	for i := 0; i < 2000 && failed < 20; i++ {
		// A new referrer for each invite: a code and an invite to write.
		switch code := post(t, h, uuid.NewString(), fmt.Sprintf("ann%d@example.com", i)).Code; code {
		case http.StatusCreated:
			created++
		case http.StatusInternalServerError:
			failed++
		default:
			t.Fatalf("status %d", code)
		}
	}
	require.Positive(t, created, "the disk was full from the start")
	require.Equal(t, 20, failed, "the disk never filled up")
	require.NoError(t, db.Close())
	n := checkConsistent(t, path)
	t.Logf("%d invites answered 201 before the disk filled up, %d rows", created, n)
	// A 500 may still leave a whole invite (sent, but its status could not
	// be written); a 201 always does.
	assert.GreaterOrEqual(t, n, 1+created)
}

func TestCorruptDatabase(t *testing.T) {
	t.Parallel()
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(i*131 + 7)
	}
	t.Run("garbage file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "referral.db")
		require.NoError(t, os.WriteFile(path, garbage, 0o600))
		s, err := sqlite.Open(path)
		require.Error(t, err)
		assert.Nil(t, s)
		assert.Contains(t, err.Error(), "sqlite: open")
	})
	t.Run("damaged pages", func(t *testing.T) {
		t.Parallel()
		user := uuid.NewString()
		path := seed(t, user)
		// Overwrite the pages of the codes and invites, and of their
		// indexes, and keep the others (sqlite_schema,
		// referral_schema_migrations), so that the file opens. The seeded
		// tables are small: each fits in its root page.
		db := rawDB(t, path)
		pages := column[int64](t, db, `SELECT rootpage FROM sqlite_schema WHERE tbl_name IN ('referral_codes', 'referral_invites') AND rootpage > 0`)
		require.NoError(t, db.Close())
		require.NotEmpty(t, pages)
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		require.NoError(t, err)
		const pageSize = 4096
		for _, p := range pages {
			_, err = f.WriteAt(garbage[:pageSize], (p-1)*pageSize)
			require.NoError(t, err)
		}
		require.NoError(t, f.Close())

		// Open reads only the schema and referral_schema_migrations, which are
		// intact: checking every page would make each start as slow as
		// the file is large. The damage shows in the requests that reach
		// it, each a 500, and the store says why.
		s, err := sqlite.Open(path)
		require.NoError(t, err, "Open reads the damaged pages")
		defer s.Close()
		h := newHandler(t, s)
		for _, u := range []string{user, uuid.NewString()} {
			assert.Equal(t, http.StatusInternalServerError, post(t, h, u, "ann@example.com").Code)
		}
		_, err = s.EnsureCode(t.Context(), testApp, user, referral.NewCode)
		assert.ErrorContains(t, err, "malformed")
	})
}

// openReadOnly opens a store on the file at path through a read-only
// connection: mode=ro holds even for root, whom file permissions do not
// stop.
func openReadOnly(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	s, err := sqlite.New(db)
	require.NoError(t, err, "an up-to-date file opens read-only")
	return s
}

// TestCheckWrite checks that the write health probe commits a write on a
// writable store and fails on one that cannot write but still reads.
func TestCheckWrite(t *testing.T) {
	t.Parallel()
	t.Run("writable", func(t *testing.T) {
		t.Parallel()
		path := seed(t, uuid.NewString())
		s, err := sqlite.Open(path)
		require.NoError(t, err)
		defer s.Close()
		// data_version changes when another connection commits: the check
		// does commit a write.
		c, err := rawDB(t, path).Conn(t.Context())
		require.NoError(t, err)
		defer c.Close()
		version := func() (v int) {
			require.NoError(t, c.QueryRowContext(t.Context(), `PRAGMA data_version`).Scan(&v))
			return v
		}
		before := version()
		require.NoError(t, s.CheckWrite(t.Context()))
		assert.NotEqual(t, before, version(), "CheckWrite committed nothing")
		assert.Equal(t, 1, checkConsistent(t, path))
	})
	t.Run("read-only connection", func(t *testing.T) {
		t.Parallel()
		path := seed(t, uuid.NewString())
		s := openReadOnly(t, path)
		require.NoError(t, s.Ping(t.Context()), "reads still work")
		err := s.CheckWrite(t.Context())
		require.Error(t, err)
		assert.ErrorContains(t, err, "sqlite: write check")
		assert.ErrorContains(t, err, "readonly")
	})
	t.Run("closed", func(t *testing.T) {
		t.Parallel()
		s, err := sqlite.Open(seed(t, uuid.NewString()))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		assert.ErrorContains(t, s.CheckWrite(t.Context()), "sqlite: write check")
	})
}

// unprivilegedEnv marks a test run again as nobody by runUnprivileged.
const unprivilegedEnv = "REFERRALKIT_SQLITE_UNPRIVILEGED"

// runUnprivileged runs the test name again as nobody (uid 65534) when the
// tests run as root, whom file modes do not stop, and checks that it
// passed there. It reports whether the caller should stop: it ran the
// test elsewhere.
func runUnprivileged(t *testing.T, name string) (done bool) {
	t.Helper()
	if os.Geteuid() != 0 {
		return false
	}
	if os.Getenv(unprivilegedEnv) != "" {
		t.Fatal("setpriv left the test running as root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("running as root, whom file modes do not stop, and no setpriv to run as nobody:", err)
	}
	// The test binary's directory is root's alone: nobody runs a copy,
	// with a temporary folder it may write.
	dir, err := os.MkdirTemp("", "referralkit-nobody-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	tmp := filepath.Join(dir, "tmp")
	require.NoError(t, os.Mkdir(tmp, 0o777))
	require.NoError(t, os.Chmod(tmp, 0o777)) // whatever the umask
	require.NoError(t, os.Chmod(dir, 0o755))
	bin, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	exe := filepath.Join(dir, "sqlite.test")
	require.NoError(t, os.WriteFile(exe, bin, 0o755))
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		exe, "-test.run=^"+name+"$", "-test.v")
	cmd.Env = append(os.Environ(), unprivilegedEnv+"=1", "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "as nobody:\n%s", out)
	require.Contains(t, string(out), "--- PASS: "+name, "as nobody:\n%s", out)
	t.Logf("ran as nobody:\n%s", out)
	return true
}

// TestReadOnlyFile opens a database file the process may not write: in a
// read-only directory Open fails and says why; in a writable one the store
// reads, and fails its writes and its write check with an error.
func TestReadOnlyFile(t *testing.T) {
	if runUnprivileged(t, "TestReadOnlyFile") {
		return
	}
	t.Parallel()
	user := uuid.NewString()
	path := seed(t, user)
	dir := filepath.Dir(path)
	require.NoError(t, os.Chmod(path, 0o444))
	// Registered after seed's t.TempDir, so it runs before the folder is
	// removed.
	t.Cleanup(func() { os.Chmod(dir, 0o755) })

	// No -shm file yet (seed closed the store, which removes it), and
	// none can be made.
	require.NoError(t, os.Chmod(dir, 0o555))
	_, err := sqlite.Open(path)
	require.Error(t, err, "a read-only directory")
	assert.ErrorContains(t, err, "sqlite: open "+path+": the directory is read-only")

	require.NoError(t, os.Chmod(dir, 0o755))
	s, err := sqlite.Open(path)
	require.NoError(t, err, "a read-only file in a writable directory")
	defer s.Close()
	require.NoError(t, s.Ping(t.Context()))
	code, err := s.EnsureCode(t.Context(), testApp, user, referral.NewCode)
	require.NoError(t, err, "reads work: the seeded user's code")
	owner, err := s.ResolveCode(t.Context(), code)
	require.NoError(t, err)
	assert.Equal(t, user, owner.UserID)
	_, err = s.EnsureCode(t.Context(), testApp, uuid.NewString(), referral.NewCode)
	assert.ErrorContains(t, err, "readonly", "a new code cannot be written")
	assert.ErrorContains(t, s.CheckWrite(t.Context()), "readonly")
	assert.Equal(t, http.StatusInternalServerError, post(t, newHandler(t, s), user, "ann@example.com").Code)
}
