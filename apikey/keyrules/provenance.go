package keyrules

import (
	"context"
	"errors"
	"fmt"

	"github.com/keygate/keygate/apikey/store"
)

// MaxScannedKeys bounds the key documents Descendants reads: an owner's
// keys, revoked and expired ones included, up to 100 pages.
const MaxScannedKeys = 100 * store.MaxPageLimit

// ErrTooManyKeys: Descendants found the owner holding more than its bound
// of key documents, and answered nothing.
var ErrTooManyKeys = errors.New("too many keys to follow")

// Descendants returns the keys that root minted through the keys API,
// directly or through keys it minted (store.Key.CreatedBy), transitively,
// nearest first: what a leaked root may have handed out. Only root's
// owner's keys can descend from it. It reads the owner's keys, at most
// maxScan of them (0: MaxScannedKeys), a page of store.MaxPageLimit at a
// time; past maxScan it returns ErrTooManyKeys, wrapped, rather than a
// tree it may have cut.
func Descendants(ctx context.Context, s store.KeyStore, root store.Key, maxScan int) ([]store.Key, error) {
	if maxScan <= 0 {
		maxScan = MaxScannedKeys
	}
	children := make(map[string][]store.Key)
	n := 0
	for k, err := range OwnerKeys(ctx, s, root.Owner, min(maxScan+1, store.MaxPageLimit)) {
		if err != nil {
			return nil, err
		}
		if n++; n > maxScan {
			return nil, fmt.Errorf("%w: owner %q holds more than %d keys", ErrTooManyKeys, root.Owner, maxScan)
		}
		if k.CreatedBy != "" && k.ID != k.CreatedBy {
			children[k.CreatedBy] = append(children[k.CreatedBy], k)
		}
	}
	var out []store.Key
	seen := map[string]bool{root.ID: true} // a document edited into a cycle ends here
	queue := []string{root.ID}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, c := range children[id] {
			if !seen[c.ID] {
				seen[c.ID] = true
				out = append(out, c)
				queue = append(queue, c.ID)
			}
		}
	}
	return out, nil
}
