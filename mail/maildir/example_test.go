package maildir_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/mail/maildir"
)

func Example() {
	dir, err := os.MkdirTemp("", "maildir-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	md, err := maildir.New(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = md.Send(context.Background(), mail.Message{
		ID:       "0190b6a4-7c1e-7000-8000-000000000001",
		From:     "Acme <no-reply@acme.example>",
		To:       "bob@example.com",
		Subject:  "Alice invited you to Acme",
		Text:     "Your referral code is K7M2Q9.\n",
		Language: "en",
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	files, _ := os.ReadDir(filepath.Join(dir, "new"))
	fmt.Println(len(files), "message in new/")
	f, err := os.Open(filepath.Join(dir, "new", files[0].Name()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if strings.HasPrefix(sc.Text(), "Subject:") {
			fmt.Println(sc.Text())
		}
	}
	// Output:
	// 1 message in new/
	// Subject: Alice invited you to Acme
}
