package referral

import "github.com/referralkit/referralkit/mail"

// Message renders the email of inv, for tests of the rendering.
func (h *Handler) Message(inv Invite) (mail.Message, error) { return h.message(inv) }

// DueFresh is how long the worker trusts an answer that an invite is still
// to be sent.
const DueFresh = dueFresh

// RecordRounds is how many rounds of Senders a DeliveryBatchStore records
// in one write.
const RecordRounds = recordRounds
