package firestorestore

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// AppliedSeq implements store.AppliedReader: the seq of the instance's
// meter document, which AddUsage writes with each batch.
func (s *Store) AppliedSeq(ctx context.Context, instance string) (int64, error) {
	client, err := s.Client(ctx)
	if err != nil {
		return 0, err
	}
	snap, err := client.Collection(s.collection + "_meters").Doc(instance).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return 0, nil
	}
	if err != nil {
		return 0, storeError("read applied usage", err)
	}
	seq, err := snap.DataAt("seq")
	if err != nil {
		return 0, storeError("read applied usage", err)
	}
	n, _ := seq.(int64)
	return n, nil
}
