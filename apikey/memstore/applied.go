package memstore

import "context"

// AppliedSeq implements store.AppliedReader.
func (s *Store) AppliedSeq(ctx context.Context, instance string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage.applied[instance], nil
}
