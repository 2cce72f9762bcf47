// Package keyrules holds keygate's rules about keys, plans and usage: what
// a valid name, owner, scope, limit or plan is, how a key is minted and
// rotated, the order keys are paged in, how limits combine, and how usage
// counts add up. They are pure functions over the model of package store,
// apart from two helpers that read through its interfaces (OwnerKeys,
// LoadPlan).
//
// They live apart from store so that store says only what is kept and how
// (interfaces, model, errors, the WithTimeout and ConfirmWrites wrappers),
// and a rule is written once for every caller: the API and the request path
// (package apikey), the CLI, and the stores themselves, which enforce some
// of them (SetPlan validates its plan, Rotate applies Rotated, the capped
// writes OverCap and Capped) so that a store used directly cannot hold what
// the API would refuse.
package keyrules
