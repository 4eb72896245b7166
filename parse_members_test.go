package introspect

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFromMembersConfirmationRepeatedMember checks that the claims of a
// signed answer, which encoding/json splits, get the same check of "cnf".
func TestFromMembersConfirmationRepeatedMember(t *testing.T) {
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(`{"active":true,"cnf":{"jkt":"a","jkt":"b"}}`), &m))
	ti, err := fromMembers(m)
	require.ErrorIs(t, err, ErrMalformedResponse)
	require.ErrorContains(t, err, `a member of "cnf" is given twice`)
	require.Nil(t, ti)

	m = nil
	require.NoError(t, json.Unmarshal([]byte(`{"active":true,"cnf":{"jkt":"a"},"sub":"s","x":[1]}`), &m))
	ti, err = fromMembers(m)
	require.NoError(t, err)
	require.Equal(t, &Introspection{
		Active:       true,
		Subject:      "s",
		Confirmation: &Confirmation{JKT: "a"},
		Extra:        map[string]json.RawMessage{"x": json.RawMessage(`[1]`)},
	}, ti)
}
