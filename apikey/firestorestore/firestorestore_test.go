package firestorestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/protobuf/proto"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/apikey/storetest"
	"github.com/keygate/keygate/internal/emulator"
)

// These tests are in the package, not in package firestorestore_test, for
// what only it can see: the documents listing reads (listedDocs), the
// listing query, the document encoding. So they cannot use testkit, which
// imports this package.

func TestMain(m *testing.M) {
	os.Exit(emulator.Main(m))
}

// t0 is the creation time of the tests' keys.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// newTestStore returns a store on the emulator, in a project of the test's
// own; the test skips without an emulator (fails when
// KEYGATE_REQUIRE_EMULATOR is set).
func newTestStore(t *testing.T) *Store {
	t.Helper()
	_, project := emulator.Project(t)
	s := New(Config{Project: project})
	t.Cleanup(func() { s.Close() })
	return s
}

// TestContract runs the store contract on Firestore.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newTestStore(t) })
}

// keyIDs are the keys' IDs.
func keyIDs(keys []store.Key) []string {
	ids := []string{}
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return ids
}

// TestStoreDownTimesOut checks that a Firestore that does not answer is an
// error once the call's context ends, whether the caller or store.WithTimeout
// set the deadline, not a hang: DocumentRef.Get retries an unavailable
// backend until its context ends, and the store sets no deadline of its own.
func TestStoreDownTimesOut(t *testing.T) {
	emulator.Host(t)
	t.Setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1") // nothing listens there
	s := New(Config{Project: "demo-down"})
	defer s.Close()
	const timeout = 300 * time.Millisecond
	for _, c := range []struct {
		name string
		get  func() error
	}{
		{"the caller's deadline", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			_, err := s.Get(ctx, keyformat.ID("x"))
			return err
		}},
		{"store.WithTimeout", func() error {
			_, err := store.WithTimeout(s, timeout).Get(context.Background(), keyformat.ID("x"))
			return err
		}},
	} {
		start := time.Now()
		err := c.get()
		if err == nil || errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("%s: Get = %v, want an unavailability error", c.name, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: Get took %v with a %v timeout", c.name, d, timeout)
		}
	}
}

// TestDocumentHasNoKey checks the stored document's fields: the schema of
// the README, and nothing that holds the key.
func TestDocumentHasNoKey(t *testing.T) {
	s := newTestStore(t)
	key, k := storetest.MintKey(t, s, "acme", func(k *store.Key) { k.Scopes = []string{"bingo:check"} })
	client, err := s.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	snap, err := client.Collection("api_keys").Doc(k.ID).Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	data := snap.Data()
	var fields []string
	for name, v := range data {
		fields = append(fields, name)
		if str, ok := v.(string); ok && strings.Contains(str, key[3:3+16]) {
			t.Errorf("field %s holds the key", name)
		}
	}
	want := map[string]bool{"owner": true, "name": true, "scopes": true, "hint": true, "created_at": true}
	if len(data) != len(want) {
		t.Errorf("fields = %v, want %v", fields, want)
	}
	for name := range want {
		if _, ok := data[name]; !ok {
			t.Errorf("field %s missing", name)
		}
	}
	if snap.Ref.ID != keyformat.ID(key) {
		t.Errorf("document ID = %s, want KeyID", snap.Ref.ID)
	}
}

// seedKeys stores n keys of owner straight into the store's collection, in
// one bulk write, and returns them in keyrules.ListOrder. Every third key shares its
// creation time with the one before, so that ties are paged too.
func seedKeys(t *testing.T, s *Store, owner string, n int) []store.Key {
	t.Helper()
	ctx := t.Context()
	client, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bw := client.BulkWriter(ctx)
	var keys []store.Key
	for i := range n {
		_, k, err := keyrules.Mint("kg", store.Key{Owner: owner, Name: fmt.Sprint("key ", i),
			CreatedAt: t0.Add(-time.Duration(i-i/3) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bw.Create(client.Collection(s.collection).Doc(k.ID), encodeKey(k)); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, store.Stored(k))
	}
	bw.End()
	slices.SortFunc(keys, keyrules.ListOrder)
	return keys
}

// TestListReadsOnePage counts the documents ListByOwner's query returns,
// the reads Firestore bills, for an owner with 500 keys: a page of limit
// keys reads at most limit+1 documents wherever it starts.
func TestListReadsOnePage(t *testing.T) {
	s := newTestStore(t)
	keys := seedKeys(t, s, "acme", 500)
	seedKeys(t, s, "other", 10)
	ctx := context.Background()
	pos := func(i int) *store.PagePosition { p := keyrules.PositionOf(keys[i]); return &p }
	for _, c := range []struct {
		name      string
		after     *store.PagePosition
		limit     int
		wantFirst int // index in keys of the page's first key
		wantNext  bool
		wantReads int64
	}{
		{"first page of 1", nil, 1, 0, true, 2},
		{"second page of 1", pos(0), 1, 1, true, 2},
		{"middle page of 20", pos(249), 20, 250, true, 21},
		{"first page of 100", nil, 100, 0, true, 101},
		{"last key", pos(498), 1, 499, false, 1},
		{"after the last key", pos(499), 1, 500, false, 0},
	} {
		before := s.listedDocs.Load()
		page, err := s.ListByOwner(ctx, "acme", c.after, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		reads := s.listedDocs.Load() - before
		want := keys[c.wantFirst:min(c.wantFirst+c.limit, len(keys))]
		if !slices.Equal(keyIDs(page.Keys), keyIDs(want)) || (page.Next != nil) != c.wantNext {
			t.Errorf("%s: %d keys, next %v; want keys %d to %d, next %v",
				c.name, len(page.Keys), page.Next, c.wantFirst, c.wantFirst+len(want)-1, c.wantNext)
		}
		if reads != c.wantReads {
			t.Errorf("%s: read %d documents, want %d", c.name, reads, c.wantReads)
		}
		t.Logf("%s: %d keys, %d documents read, of the owner's %d", c.name, len(page.Keys), reads, len(keys))
	}
}

// The repository's root, where firestore.indexes.json and the README are.
const repoRoot = "../../"

// firestoreIndexes is firestore.indexes.json.
type firestoreIndexes struct {
	Indexes []struct {
		CollectionGroup string `json:"collectionGroup"`
		QueryScope      string `json:"queryScope"`
		Fields          []struct {
			FieldPath string `json:"fieldPath"`
			Order     string `json:"order"`
		} `json:"fields"`
	} `json:"indexes"`
	FieldOverrides []json.RawMessage `json:"fieldOverrides"`
}

// readIndexFile returns the collection group and fields of each index in
// firestore.indexes.json, each field as "path order", order in lower case.
func readIndexFile(t *testing.T) (collection string, indexes [][]string) {
	t.Helper()
	data, err := os.ReadFile(repoRoot + "firestore.indexes.json")
	if err != nil {
		t.Fatal(err)
	}
	var f firestoreIndexes
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("firestore.indexes.json: %v", err)
	}
	if len(f.Indexes) == 0 {
		t.Fatal("firestore.indexes.json has no index")
	}
	collection = f.Indexes[0].CollectionGroup
	for _, ix := range f.Indexes {
		if ix.QueryScope != "COLLECTION" || ix.CollectionGroup != collection {
			t.Fatalf("firestore.indexes.json: index %+v, want query scope COLLECTION on %s", ix, collection)
		}
		var fields []string
		for _, fd := range ix.Fields {
			fields = append(fields, fd.FieldPath+" "+strings.ToLower(fd.Order))
		}
		indexes = append(indexes, fields)
	}
	return collection, indexes
}

// indexWith returns the fields of the index of firestore.indexes.json whose
// second field is field.
func indexWith(t *testing.T, field string) []string {
	t.Helper()
	_, indexes := readIndexFile(t)
	for _, fields := range indexes {
		if len(fields) == 2 && strings.HasPrefix(fields[1], field+" ") {
			return fields
		}
	}
	t.Fatalf("firestore.indexes.json has no index on owner and %s", field)
	return nil
}

// readmeIndexCommands returns the arguments of every `gcloud firestore
// indexes composite create` command in the README and the docs it links
// (docs/*.md), after "create".
func readmeIndexCommands(t *testing.T) [][]string {
	t.Helper()
	docs, err := filepath.Glob(repoRoot + "docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	for _, f := range append([]string{repoRoot + "README.md"}, docs...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b...)
	}
	const cmd = "gcloud firestore indexes composite create "
	var out [][]string
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	for line := range strings.Lines(text) {
		if _, args, ok := strings.Cut(line, cmd); ok {
			out = append(out, strings.Fields(args))
		}
	}
	return out
}

// TestIndexFileMatchesREADME checks that the README's commands that create
// the indexes (under Firestore schema and under Deploying) name the
// collection group and fields of firestore.indexes.json, in its order, each
// index once in each place, and that the indexes are on the collection the
// store uses by default (KEYS_COLLECTION's default).
func TestIndexFileMatchesREADME(t *testing.T) {
	collection, indexes := readIndexFile(t)
	if want := New(Config{}).collection; collection != want {
		t.Errorf("index collection group %q, want the store's default collection %q", collection, want)
	}
	cmds := readmeIndexCommands(t)
	if len(cmds) != 2*len(indexes) {
		t.Fatalf("README has %d index commands, want %d (each index under Firestore schema and one-time setup)", len(cmds), 2*len(indexes))
	}
	for i, args := range cmds {
		var group string
		var got []string
		for _, a := range args {
			switch name, v, _ := strings.Cut(a, "="); name {
			case "--collection-group":
				group = v
			case "--field-config":
				var path, order string
				for part := range strings.SplitSeq(v, ",") {
					k, v, _ := strings.Cut(part, "=")
					switch k {
					case "field-path":
						path = v
					case "order":
						order = v
					default:
						t.Errorf("README index command: unexpected field-config %q", part)
					}
				}
				got = append(got, path+" "+order)
			default:
				t.Errorf("README index command: unexpected argument %q", a)
			}
		}
		if want := indexes[i%len(indexes)]; group != collection || !slices.Equal(got, want) {
			t.Errorf("README index command %d on %q with fields %q; firestore.indexes.json has %q with %q",
				i, group, got, collection, want)
		}
	}
}

// TestListQueryUsesTheIndex checks that the listing query is the one the
// index serves: an equality filter on the index's first field, then ordered
// by its other fields and, in the last one's direction, the document ID, as
// Firestore implies; starting after the cursor, limited to limit+1.
func TestListQueryUsesTheIndex(t *testing.T) {
	fields := indexWith(t, "created_at")
	s := newTestStore(t)
	client, err := s.Client(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	after := keyrules.PositionOf(store.Key{ID: keyformat.ID("x"), CreatedAt: t0})
	raw, err := ownerPageQuery(client.Collection("api_keys"), "acme", &after, 20).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	var req pb.RunQueryRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	q := req.GetStructuredQuery()
	f := q.GetWhere().GetFieldFilter()
	if f == nil || f.GetField().GetFieldPath()+" ascending" != fields[0] ||
		f.GetOp() != pb.StructuredQuery_FieldFilter_EQUAL || f.GetValue().GetStringValue() != "acme" {
		t.Errorf("filter = %v, want %s == acme", q.GetWhere(), fields[0])
	}
	var orders []string
	for _, o := range q.GetOrderBy() {
		orders = append(orders, o.GetField().GetFieldPath()+" "+strings.ToLower(o.GetDirection().String()))
	}
	last := fields[len(fields)-1]
	want := append(slices.Clone(fields[1:]), firestore.DocumentID+last[strings.LastIndex(last, " "):])
	if !slices.Equal(orders, want) {
		t.Errorf("order by %q, want %q", orders, want)
	}
	if q.GetLimit().GetValue() != 21 || q.GetStartAt() == nil || q.GetStartAt().GetBefore() || len(q.GetStartAt().GetValues()) != 2 {
		t.Errorf("limit %v, start %v; want 21, just after (created_at, ID)", q.GetLimit(), q.GetStartAt())
	}
}

// TestIndexCommandParses runs the README's index command with the installed
// gcloud and no credentials: gcloud parses every flag before it looks for an
// account, so stopping at the missing account (exit 1) shows that the
// command is one gcloud accepts.
func TestIndexCommandParses(t *testing.T) {
	if _, err := exec.LookPath("gcloud"); err != nil {
		t.Skip("gcloud not found on PATH")
	}
	args := readmeIndexCommands(t)[0]
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "gcloud",
		append([]string{"firestore", "indexes", "composite", "create", "--project=demo-keygate"}, args...)...)
	cmd.Env = emulator.GcloudEnv(t)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("gcloud timed out\nstderr:\n%s", stderr.String())
	}
	code := 0
	if exitErr, ok := errors.AsType[*exec.ExitError](err); ok && exitErr.Exited() {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("gcloud: %v\nstderr:\n%s", err, stderr.String())
	}
	if code != 1 || !strings.Contains(stderr.String(), "You do not currently have an active account selected.") {
		t.Errorf("gcloud exit %d, want 1 for the missing account\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
}

// TestCapAcrossClients checks the cap when the concurrent creates come from
// separate Firestore clients, as from separate instances: the transaction
// alone, without the in-process lock, keeps them under it.
func TestCapAcrossClients(t *testing.T) {
	_, project := emulator.Project(t)
	const clients, limit = 3, 2
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for i := range clients {
		s := New(Config{Project: project})
		t.Cleanup(func() { s.Close() })
		wg.Go(func() {
			_, k, err := keyrules.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0})
			if err == nil {
				err = s.CreateCapped(context.Background(), k, limit, t0)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrKeyLimitReached):
			t.Errorf("CreateCapped = %v", err)
		}
	}
	if ok != limit {
		t.Errorf("%d created, want %d", ok, limit)
	}
	s := New(Config{Project: project})
	t.Cleanup(func() { s.Close() })
	if page, err := s.ListByOwner(context.Background(), "acme", nil, store.MaxPageLimit); err != nil || len(page.Keys) != limit {
		t.Errorf("ListByOwner = %d keys, %v; want %d", len(page.Keys), err, limit)
	}
}
