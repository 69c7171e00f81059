// Package webhook signs and sends referralkit's events to an HTTP endpoint by
// the Standard Webhooks scheme (https://www.standardwebhooks.com), and
// verifies them on the receiving side.
//
// Every delivery is one JSON POST of an [Event]:
//
//	{"type": "invite.sent", "timestamp": "2026-01-02T03:04:05Z", "data": {...}}
//
// with three headers besides content-type: application/json:
//
//	webhook-id:        the event's id, the same on every retry, so receivers dedupe by it
//	webhook-timestamp: the attempt's time, in Unix seconds
//	webhook-signature: v1,<base64 of HMAC-SHA256(key, id + "." + timestamp + "." + body)>
//
// The key is the secret's decoded bytes; a secret is written "whsec_" followed
// by the standard base64 of at least 24 bytes ([ParseSecret]). [Sign] makes the
// signature header and [Verify] checks one, in constant time and within a
// clock tolerance.
//
// [Sender.Send] makes one attempt: a 2xx is success; any other status, a
// redirect (never followed), a timeout or a network error is a
// [*DeliveryError], and [Retryable] reports true for it. The caller (the
// outbox worker) retries with [Backoff] until [RetryFor] has passed since the
// first attempt: delivery is at least once. An Event carries ids, never a
// person's address.
package webhook
