package memory_test

import (
	"fmt"
	"testing"

	"github.com/referralkit/referralkit/store/memory"
	"github.com/referralkit/referralkit/store/storetest"
)

func TestKeyStoreConformance(t *testing.T) {
	t.Parallel()
	storetest.RunKeyStore(t,
		func(t *testing.T) storetest.Keys { return memory.NewKeys() },
		// %#v prints the unexported maps too: all that the store holds.
		func(t *testing.T, s storetest.Keys) string { return fmt.Sprintf("%#v", s) })
}
