// Package store says what keygate keeps and how, and nothing of its rules:
// the interfaces a store implements (Store and its parts), the model they
// keep (Key, Plan, Change, usage counts, and Stored, the form every store
// gives back), the errors they answer, and the two wrappers every caller
// puts over a store: WithTimeout, the one deadline on store calls, and
// ConfirmWrites, the one read-back of a write whose answer was lost.
//
// What a valid key or plan is, how keys are minted, rotated and paged, and
// how usage adds up are in package keyrules, which imports this one; the
// stores import both and enforce the rules a store must (SetPlan refuses
// an invalid plan with ErrInvalidPlan).
package store
