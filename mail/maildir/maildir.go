package maildir

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/referralkit/referralkit/mail"
)

// Maildir writes messages into one Maildir folder. It is safe for
// concurrent use, also by several processes sharing the folder.
type Maildir struct {
	// DKIM, when set, signs every message written (see mail.DKIM); default
	// nil: messages are written unsigned. Set it before the first Send.
	DKIM *mail.DKIM

	dir  string
	host string // sanitised for file names
	pid  int
	seq  atomic.Uint64
}

var _ interface {
	Send(context.Context, mail.Message) error
} = (*Maildir)(nil)

// New returns a Maildir writing into dir, creating dir and its tmp, new
// and cur folders (mode 0700) as needed.
func New(dir string) (*Maildir, error) {
	if dir == "" {
		return nil, errors.New("maildir: empty folder name")
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("maildir: %w", err)
		}
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	// The Maildir convention escapes the two characters a name cannot hold.
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
	return &Maildir{dir: dir, host: host, pid: os.Getpid()}, nil
}

// Dir returns the folder's path as given to New.
func (d *Maildir) Dir() string { return d.dir }

// Send writes m into new/ as one file (mode 0600). A message that cannot
// be built is refused with an error wrapping mail.ErrPermanent.
func (d *Maildir) Send(ctx context.Context, m mail.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	g, err := mail.Build(m)
	if err != nil {
		return fmt.Errorf("maildir: %w (%w)", err, mail.ErrPermanent)
	}
	if d.DKIM != nil {
		if err := d.DKIM.SignMsg(g); err != nil {
			return fmt.Errorf("maildir: %w", err)
		}
	}
	name, err := d.uniqueName()
	if err != nil {
		return err
	}
	tmp := filepath.Join(d.dir, "tmp", name)
	if err := d.write(tmp, g.WriteTo); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, "new", name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("maildir: %w", err)
	}
	return syncDir(filepath.Join(d.dir, "new"))
}

func (d *Maildir) write(path string, writeTo func(w io.Writer) (int64, error)) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	b := bufio.NewWriter(f)
	_, err = writeTo(b)
	if err == nil {
		err = b.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("maildir: writing message: %w", err)
	}
	return nil
}

func (d *Maildir) uniqueName() (string, error) {
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("maildir: %w", err)
	}
	now := time.Now()
	return fmt.Sprintf("%d.M%dP%dQ%dR%s.%s", now.Unix(), now.Nanosecond()/1000, d.pid,
		d.seq.Add(1), hex.EncodeToString(r[:]), d.host), nil
}

// syncDir makes a rename into dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("maildir: syncing folder: %w", err)
	}
	return nil
}
