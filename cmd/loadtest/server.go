package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/referralkit/referralkit/store/sqlite"
)

// serverPackage is the standalone server, built when -server is not given.
const serverPackage = "github.com/referralkit/referralkit/examples/server"

// startTimeout bounds a child's start-up, from exec to a healthy answer.
const startTimeout = 30 * time.Second

// buildServer builds the standalone server into dir and returns the
// binary's path. It must run inside the module, as go run and go test do.
func buildServer(ctx context.Context, dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "referral-server")
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, serverPackage).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("loadtest: go build %s (run inside the module, or pass -server): %w\n%s", serverPackage, err, out)
	}
	return bin, nil
}

// serverSetup is how a referral server child is run.
type serverSetup struct {
	bin          string
	dir          string // working folder: database, dev key, log
	smtpAddr     string // the sink
	sendTimeout  time.Duration
	retryBackoff time.Duration
	maxBacklog   int // 0: not passed
}

func (s serverSetup) dbPath() string { return filepath.Join(s.dir, "referral.db") }

// args returns the server's flags for a listen address.
func (s serverSetup) args(addr string) []string {
	args := []string{
		"-addr", addr,
		"-db", s.dbPath(),
		"-delivery", "queued",
		"-smtp", "smtp://" + s.smtpAddr + "?tls=none",
		"-send-timeout", s.sendTimeout.String(),
		"-retry-backoff", s.retryBackoff.String(),
	}
	if s.maxBacklog > 0 {
		args = append(args, "-max-backlog", strconv.Itoa(s.maxBacklog))
	}
	return args
}

// commandLine is the server's command as a person would type it.
func (s serverSetup) commandLine() string {
	return "referral-server " + strings.Join(s.args("127.0.0.1:0"), " ")
}

// createKey runs "keys create -json" on the server's database.
func (s serverSetup) createKey(ctx context.Context) (clientID, apiKey string, err error) {
	cmd := exec.CommandContext(ctx, s.bin, "keys", "create", "-json", "-db", s.dbPath())
	cmd.Dir = s.dir
	cmd.Env = cleanEnv()
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("loadtest: keys create: %w", err)
	}
	var k struct{ ClientID, APIKey string }
	if err := json.Unmarshal(out, &k); err != nil || k.ClientID == "" || k.APIKey == "" {
		return "", "", fmt.Errorf("loadtest: keys create printed %q", out)
	}
	return k.ClientID, k.APIKey, nil
}

// child is a running server process: the referral server or the bare one.
type child struct {
	cmd  *exec.Cmd
	addr string        // "127.0.0.1:port"
	done chan struct{} // closed once the process has exited
}

var listening = regexp.MustCompile(`addr=http://(127\.0\.0\.1:\d+)`)

// startServer starts the referral server on addr ("127.0.0.1:0" for any
// port), appending its log to server.log in its folder, and waits until
// /healthz answers.
func startServer(ctx context.Context, s serverSetup, addr string) (*child, error) {
	cmd := exec.Command(s.bin, s.args(addr)...)
	cmd.Dir = s.dir
	return startChild(ctx, cmd, filepath.Join(s.dir, "server.log"))
}

// startChild starts cmd, which must log "addr=http://127.0.0.1:port" on
// stderr once it listens and serve GET /healthz, appends its stderr to
// logPath, and waits until /healthz answers 200.
func startChild(ctx context.Context, cmd *exec.Cmd, logPath string) (*child, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	if cmd.Env == nil {
		cmd.Env = cleanEnv()
	}
	dieWithParent(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("loadtest: start %s: %w", filepath.Base(cmd.Path), err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		// The log is copied line by line until the process ends, so that
		// the pipe never fills; the first listening line gives the port.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(logFile, stderr)
		_ = cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	select {
	case c.addr = <-found:
	case <-c.done:
		return nil, fmt.Errorf("loadtest: %s exited at start-up; see %s", filepath.Base(cmd.Path), logPath)
	case <-ctx.Done():
		c.kill()
		return nil, fmt.Errorf("loadtest: %s did not start: %w", filepath.Base(cmd.Path), ctx.Err())
	}
	if err := waitHealthy(ctx, c); err != nil {
		c.kill()
		return nil, err
	}
	return c, nil
}

// waitHealthy polls /healthz until it answers 200.
func waitHealthy(ctx context.Context, c *child) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.addr+"/healthz", nil)
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.done:
			return errors.New("loadtest: server exited before it was healthy")
		case <-ctx.Done():
			return fmt.Errorf("loadtest: server not healthy: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop asks the process to stop (SIGTERM) and kills it if it has not
// within 15 seconds.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		c.kill()
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// rssKiB returns the process's resident set size (VmRSS) in KiB.
func (c *child) rssKiB() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("loadtest: resident memory: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, errors.New("loadtest: no VmRSS in /proc status")
}

// userHZ is the unit of the CPU times in /proc/PID/stat: 100 a second on
// every Linux architecture Go supports.
const userHZ = 100

// cpuTime returns the CPU time (user and system, all threads) the process
// has used so far.
func (c *child) cpuTime() (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("loadtest: cpu time: %w", err)
	}
	// The command name, in parentheses, may hold spaces: count fields from
	// the closing one. utime and stime are fields 14 and 15 of the line.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, errors.New("loadtest: cpu time: malformed /proc stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("loadtest: cpu time: malformed /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("loadtest: cpu time: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// dbBytes returns the size of the database file and its WAL.
func dbBytes(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// queueState is the delivery status of every invite in the database.
type queueState struct {
	pending, sent, failed int
}

// readQueue counts the invites by status. It reads the server's tables
// directly (a second connection on a WAL database is safe), because the
// server exposes no such count; it is the only coupling to the schema.
func readQueue(ctx context.Context, db *sql.DB) (queueState, error) {
	rows, err := db.QueryContext(ctx, `SELECT status, count(*) FROM referral_invites GROUP BY status`)
	if err != nil {
		return queueState{}, fmt.Errorf("loadtest: reading the queue: %w", err)
	}
	defer rows.Close()
	var q queueState
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return queueState{}, fmt.Errorf("loadtest: reading the queue: %w", err)
		}
		switch status {
		case "pending":
			q.pending = n
		case "sent":
			q.sent = n
		case "failed":
			q.failed = n
		}
	}
	if err := rows.Err(); err != nil {
		return queueState{}, fmt.Errorf("loadtest: reading the queue: %w", err)
	}
	return q, nil
}

// openQueue opens the server's database for readQueue.
func openQueue(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", sqlite.DSN(path))
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// cleanEnv is this process's environment without REFERRAL_ variables, so
// that a developer's settings cannot change the server under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REFERRAL_") {
			env = append(env, kv)
		}
	}
	return env
}

// leaseSends is a claim's lease in sends (-send-timeout) with the
// handler's defaults: a batch's share of each sender, plus one.
const leaseSends = (workerBatch+senders-1)/senders + 1
