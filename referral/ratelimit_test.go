package referral_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/referralkit/referralkit/referral"
)

// TestLookupLimitByNetwork: IPv6 clients share a budget per /64, IPv4
// clients per address, and an IPv4-mapped IPv6 address is its IPv4 one.
func TestLookupLimitByNetwork(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		first, second string // RemoteAddr of the two clients
		shared        bool
	}{
		{"one IPv6 /64", "[2001:db8:1:2::1]:1000", "[2001:db8:1:2:ffff:ffff:ffff:fffe]:2000", true},
		{"IPv6 /64 in another spelling", "[2001:db8:1:2::1]:1000", "[2001:0DB8:0001:0002:0:0:0:9]:2000", true},
		{"IPv6 with a zone", "[fe80::1%eth0]:1000", "[fe80::2%eth1]:2000", true},
		{"two IPv6 /64s", "[2001:db8:1:2::1]:1000", "[2001:db8:1:3::1]:1000", false},
		{"IPv4-mapped IPv6", "192.0.2.1:1000", "[::ffff:192.0.2.1]:2000", true},
		{"one IPv4 address", "192.0.2.1:1000", "192.0.2.1:2000", true},
		{"two IPv4 addresses", "192.0.2.1:1000", "192.0.2.2:1000", false},
		{"IPv4-mapped, two addresses", "[::ffff:192.0.2.1]:1000", "[::ffff:192.0.2.2]:1000", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(c *referral.Config) { c.LookupsPerMinute = 2 })
			mux := http.NewServeMux()
			mux.Handle(referral.CodePattern, f.h.CodeLookup())
			get := func(remote string) *httptest.ResponseRecorder {
				req := newRequest(http.MethodGet, "/v1/referral-codes/ZZZZZZZZZZ", "")
				req.RemoteAddr = remote
				return serveMux(mux, req)
			}
			checkEnvelope(t, get(tt.first), 404)
			checkEnvelope(t, get(tt.first), 404)
			checkEnvelope(t, get(tt.first), 429)
			if tt.shared {
				checkEnvelope(t, get(tt.second), 429)
			} else {
				checkEnvelope(t, get(tt.second), 404)
			}
			f.Advance(time.Minute)
			checkEnvelope(t, get(tt.second), 404)
		})
	}
}
