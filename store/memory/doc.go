// Package memory holds in-memory stores for tests and demos: Store, a
// referral.CodeStore, referral.RedemptionStore, referral.RecipientStore,
// referral.ReferrerStore and referral.QueueStore, and Keys, an auth.KeyStore and auth.KeyManager. They
// enforce every rule of their interfaces, but hold their data only as long
// as the process lives and cannot be shared between processes.
package memory
