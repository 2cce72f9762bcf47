package keygate

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/protobuf/proto"
)

// seedKeys stores n keys of owner straight into the store's collection, in
// one bulk write, and returns them in ListOrder. Every third key shares its
// creation time with the one before, so that ties are paged too.
func seedKeys(t *testing.T, s *firestorestore.Store, owner string, n int) []store.Key {
	t.Helper()
	ctx := t.Context()
	client, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bw := client.BulkWriter(ctx)
	var keys []store.Key
	for i := range n {
		_, k, err := store.Mint("kg", store.Key{Owner: owner, Name: fmt.Sprint("key ", i),
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
	slices.SortFunc(keys, store.ListOrder)
	return keys
}

// TestFirestoreListReadsOnePage counts the documents ListByOwner's query
// returns, the reads Firestore bills, for an owner with 500 keys: a page of
// limit keys reads at most limit+1 documents wherever it starts.
func TestFirestoreListReadsOnePage(t *testing.T) {
	s := newEmulatorStore(t)
	keys := seedKeys(t, s, "acme", 500)
	seedKeys(t, s, "other", 10)
	ctx := context.Background()
	for _, c := range []struct {
		name      string
		after     *store.PagePosition
		limit     int
		wantFirst int // index in keys of the page's first key
		wantNext  bool
		wantReads int64
	}{
		{"first page of 1", nil, 1, 0, true, 2},
		{"second page of 1", ptr(store.PositionOf(keys[0])), 1, 1, true, 2},
		{"middle page of 20", ptr(store.PositionOf(keys[249])), 20, 250, true, 21},
		{"first page of 100", nil, 100, 0, true, 101},
		{"last key", ptr(store.PositionOf(keys[498])), 1, 499, false, 1},
		{"after the last key", ptr(store.PositionOf(keys[499])), 1, 500, false, 0},
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

// TestKeysListReadsOnePage is GET /v1/keys?limit=1 for an owner with 500
// keys: one key and a next_page_token, for at most 2 documents read, and the
// token's page the next key, for as many.
func TestKeysListReadsOnePage(t *testing.T) {
	s := newKeysServer(t)
	fs := s.store.(*firestorestore.Store)
	admin, _ := mintTestKey(t, s.store, "acme", manage, func(k *store.Key) { k.CreatedAt = t0.Add(-time.Hour) })
	keys := seedKeys(t, fs, "acme", 499)
	token := ""
	for i := range 2 {
		before := fs.listedDocs.Load()
		var page keyListView
		mustJSON(t, s.call("GET", "/v1/keys?limit=1&page_token="+token, admin, ""), 200, &page)
		reads := fs.listedDocs.Load() - before
		if len(page.Keys) != 1 || page.Keys[0].ID != keys[i].ID || page.NextPageToken == "" {
			t.Fatalf("page %d = %+v, want key %s and a next_page_token", i+1, page, keys[i].ID)
		}
		if reads > 2 {
			t.Errorf("page %d of 1 key read %d documents, want at most 2", i+1, reads)
		}
		t.Logf("GET /v1/keys?limit=1, page %d: %d documents read, of the owner's 500 keys", i+1, reads)
		token = page.NextPageToken
	}
}

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

// readIndexFile returns the collection group and fields of the one index in
// firestore.indexes.json, each field as "path order", order in lower case.
func readIndexFile(t *testing.T) (collection string, fields []string) {
	t.Helper()
	data, err := os.ReadFile("firestore.indexes.json")
	if err != nil {
		t.Fatal(err)
	}
	var f firestoreIndexes
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("firestore.indexes.json: %v", err)
	}
	if len(f.Indexes) != 1 || f.Indexes[0].QueryScope != "COLLECTION" {
		t.Fatalf("firestore.indexes.json = %+v, want one index of query scope COLLECTION", f)
	}
	for _, fd := range f.Indexes[0].Fields {
		fields = append(fields, fd.FieldPath+" "+strings.ToLower(fd.Order))
	}
	return f.Indexes[0].CollectionGroup, fields
}

// readmeIndexCommands returns the arguments of every `gcloud firestore
// indexes composite create` command in the README, after "create".
func readmeIndexCommands(t *testing.T) [][]string {
	t.Helper()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
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

// TestFirestoreIndexFileMatchesREADME checks that the README's commands that
// create the index (under Firestore schema and under Deploying) name the
// collection group and fields of firestore.indexes.json, in its order, and
// that the index is the one the default configuration's listing query needs.
func TestFirestoreIndexFileMatchesREADME(t *testing.T) {
	collection, fields := readIndexFile(t)
	if want := DefaultConfig().Collection; collection != want {
		t.Errorf("index collection group %q, want KEYS_COLLECTION's default %q", collection, want)
	}
	cmds := readmeIndexCommands(t)
	if len(cmds) != 2 {
		t.Fatalf("README has %d index commands, want 2 (Firestore schema, one-time setup)", len(cmds))
	}
	for _, args := range cmds {
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
		if group != collection || !slices.Equal(got, fields) {
			t.Errorf("README index command on %q with fields %q; firestore.indexes.json has %q with %q",
				group, got, collection, fields)
		}
	}
}

// TestListQueryUsesTheIndex checks that the listing query is the one the
// index serves: an equality filter on the index's first field, then ordered
// by its other fields and, in the last one's direction, the document ID, as
// Firestore implies; starting after the cursor, limited to limit+1.
func TestListQueryUsesTheIndex(t *testing.T) {
	_, fields := readIndexFile(t)
	s := newEmulatorStore(t)
	client, err := s.Client(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	after := store.PositionOf(store.Key{ID: keyformat.ID("x"), CreatedAt: t0})
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

// TestFirestoreIndexCommandParses runs the README's index command with the
// installed gcloud and no credentials: gcloud parses every flag before it
// looks for an account, so stopping at the missing account (exit 1) shows
// that the command is one gcloud accepts.
func TestFirestoreIndexCommandParses(t *testing.T) {
	if _, err := exec.LookPath("gcloud"); err != nil {
		t.Skip("gcloud not found on PATH")
	}
	args := readmeIndexCommands(t)[0]
	stdout, stderr, code := deployRun(t, "gcloud",
		append([]string{"firestore", "indexes", "composite", "create", "--project=demo-keygate"}, args...),
		deployEnv(t, nil), "")
	if code != 1 || !strings.Contains(stderr, "You do not currently have an active account selected.") {
		t.Errorf("gcloud exit %d, want 1 for the missing account\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
