package smtp_test

import (
	"fmt"

	"github.com/referralkit/referralkit/mail/smtp"
)

func ExampleParseURL() {
	cfg, err := smtp.ParseURL("smtp://mailer%40example.com:s3cr%2Ft@mail.example.com?tls=starttls")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Host, cfg.TLS, cfg.Username)
	fmt.Println(cfg) // the password is redacted; the port shows its default

	_, err = smtp.ParseURL("smtp://mail.example.com?tls=none")
	fmt.Println(err)
	// Output:
	// mail.example.com starttls mailer@example.com
	// smtp://mailer%40example.com:xxxxx@mail.example.com:587?tls=starttls
	// smtp: tls=none is only allowed to a loopback host, not "mail.example.com"
}
