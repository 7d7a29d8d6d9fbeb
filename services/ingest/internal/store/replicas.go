package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/assoliment/assoliment/services/storage"
)

// Replicas is the store of a service writing to the replicas of a
// ClickHouse cluster (CLICKHOUSE_CLUSTER): it looks identities up and
// inserts on the replica its connection is on, and keeps the identity
// index of every replica complete (storage/cluster_index.go):
//
//   - Remember records a batch's identities on its own replica (which must
//     succeed) and on every other one; for each it cannot reach it writes
//     a mark first, so the replica counts as stale;
//   - when its connection moves to another replica (the one it was on is
//     lost), and at start, the replica is migrated, its index prepared
//     and, if stale, filled again from its event tables, before any
//     look-up there;
//   - Maintain repairs every other stale replica as soon as it answers and
//     has fetched every part the others committed.
type Replicas struct {
	*Store
	cluster string

	mu       sync.Mutex
	arrived  bool   // the current replica was readied
	switches uint64 // the connection's switches when it was
	peers    map[string]*peer
}

// peer is another replica, reached on a connection of its own.
type peer struct {
	name    string // {replica} macro, once known
	st      *Store // nil until connected
	retryAt time.Time
}

// PeerTimeout bounds recording identities on another replica; one that
// fails is not tried again for PeerRetry (marks are written meanwhile), so
// a lost machine slows no batch down by more than one timeout.
const (
	PeerTimeout = 3 * time.Second
	PeerRetry   = 5 * time.Second
)

// NewReplicas returns the cluster store over st, whose connection lists
// the replicas.
func NewReplicas(st *Store, cluster string) *Replicas {
	r := &Replicas{Store: st, cluster: cluster, peers: map[string]*peer{}}
	for _, a := range st.c.Addrs() {
		r.peers[a] = &peer{}
	}
	return r
}

// Stored readies the replica the connection is on when it is new to it,
// then looks ids up there.
func (r *Replicas) Stored(ctx context.Context, ids []Identity) (map[Identity]bool, error) {
	if err := r.arrive(ctx); err != nil {
		return nil, err
	}
	return r.Store.Stored(ctx, ids)
}

// Remember records the rows' identities on the current replica, then on
// every other one, marking those it cannot reach.
func (r *Replicas) Remember(ctx context.Context, rows []Row) error {
	if err := r.arrive(ctx); err != nil {
		return err
	}
	if err := r.Store.Remember(ctx, rows); err != nil {
		return err
	}
	current := r.c.Server()
	for _, a := range r.c.Addrs() {
		if a == current {
			continue
		}
		if err := r.rememberOn(ctx, a, rows); err != nil {
			if merr := r.mark(ctx, a); merr != nil {
				return fmt.Errorf("replica %s missed identities and could not be marked stale: %w", a, merr)
			}
		}
	}
	return nil
}

// rememberOn records the rows' identities on the replica at addr.
func (r *Replicas) rememberOn(ctx context.Context, addr string, rows []Row) error {
	st, _, err := r.peer(ctx, addr)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, PeerTimeout)
	defer cancel()
	if err := st.Remember(pctx, rows); err != nil {
		r.drop(addr, st, err)
		return err
	}
	return nil
}

// peer returns the store and name of the replica at addr, connected,
// migrated and with its index prepared, or an error while it is not
// reachable.
func (r *Replicas) peer(ctx context.Context, addr string) (*Store, string, error) {
	r.mu.Lock()
	p := r.peers[addr]
	st, name, retryAt := p.st, p.name, p.retryAt
	r.mu.Unlock()
	if st != nil {
		return st, name, nil
	}
	if time.Now().Before(retryAt) {
		return nil, "", fmt.Errorf("replica %s unreachable; next try in %s", addr, time.Until(retryAt).Round(time.Second))
	}
	pctx, cancel := context.WithTimeout(ctx, PeerTimeout)
	defer cancel()
	c, err := r.c.OpenOn(pctx, addr)
	if err != nil {
		r.drop(addr, nil, err)
		return nil, "", err
	}
	st = New(c, r.maxLateness, r.log)
	if name, err = r.ready(ctx, st, true); err != nil {
		c.Close()
		r.drop(addr, nil, err)
		return nil, "", err
	}
	r.mu.Lock()
	if p.st != nil { // connected meanwhile by the other goroutine
		c.Close()
		st = p.st
	} else {
		p.st = st
	}
	p.name = name
	r.mu.Unlock()
	r.log.Info("clickhouse: replica reached; recording identities there too", "addr", addr, "replica", name)
	return st, name, nil
}

// drop closes the connection st to the replica at addr after err (st nil
// when none was made), not to be tried again for PeerRetry.
func (r *Replicas) drop(addr string, st *Store, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.peers[addr]
	if st != nil && p.st == st {
		r.log.Warn("clickhouse: replica lost; marking its identity index stale", "addr", addr, "replica", p.name, "err", err)
		p.st.c.Close()
		p.st = nil
	}
	p.retryAt = time.Now().Add(PeerRetry)
}

// ready migrates the replica of st and prepares its index's months; it
// returns the replica's name. With waitCaughtUp (another replica than the
// one written through) the months are prepared only once the replica
// holds every part the others committed: a month missing there is filled
// from its event tables, which a replica just created or just back may
// still be fetching.
func (r *Replicas) ready(ctx context.Context, st *Store, waitCaughtUp bool) (string, error) {
	name, err := storage.Replica(ctx, st.db, r.cluster)
	if err != nil {
		return "", err
	}
	if err := storage.MigrateReplica(ctx, st.db, r.cluster, st.c.Database); err != nil {
		return "", err
	}
	if err := st.db.Exec(ctx, storage.CreateIndexMarks(st.c.Database)); err != nil {
		return "", fmt.Errorf("create %s: %w", storage.IndexMarks, err)
	}
	if waitCaughtUp {
		if err := caughtUp(ctx, st); err != nil {
			return "", err
		}
	}
	if err := st.PrepareIndex(ctx, time.Now()); err != nil {
		return "", err
	}
	return name, nil
}

// mark records on the current replica that the replica at addr missed
// identities from now on. A replica not reached since this process
// started has no known name ({replica} macro): then every replica
// ZooKeeper lists for the event tables, but the current one, is marked
// (a needless mark costs one refill).
func (r *Replicas) mark(ctx context.Context, addr string) error {
	r.mu.Lock()
	names := []string{r.peers[addr].name}
	current := r.peers[r.c.Server()].name
	r.mu.Unlock()
	if names[0] == "" {
		shard, err := storage.Shard(ctx, r.db)
		if err != nil {
			return err
		}
		var listed []storage.TableName
		if err := r.db.Select(ctx, &listed, storage.ReplicaNames(r.c.Database, shard, storage.Measurements)); err != nil {
			return fmt.Errorf("list the replicas: %w", err)
		}
		names = names[:0]
		for _, l := range listed {
			if l.Name != current {
				names = append(names, l.Name)
			}
		}
	}
	rows := make([][]any, 0, len(names))
	at := storage.MarkNow()
	for _, n := range names {
		rows = append(rows, storage.IndexMarkRow(n, false, at))
	}
	return r.db.Insert(ctx, storage.IndexMarks, storage.IndexMarkColumns, rows)
}

// arrive readies the replica the connection is on, at start and after
// every move: migrations, index months and, when stale, a fill of its
// index from its event tables. Nothing is looked up there before.
func (r *Replicas) arrive(ctx context.Context) error {
	r.mu.Lock()
	done := r.arrived && r.switches == r.c.Switches()
	r.mu.Unlock()
	if done {
		return nil
	}
	switches := r.c.Switches()
	addr := r.c.Server()
	name, err := r.ready(ctx, r.Store, false)
	if err != nil {
		return fmt.Errorf("ready replica %s: %w", addr, err)
	}
	r.mu.Lock()
	r.peers[addr].name = name
	r.mu.Unlock()
	if err := r.repair(ctx, r.Store, name, false); err != nil {
		return err
	}
	r.mu.Lock()
	r.arrived, r.switches = true, switches
	r.mu.Unlock()
	r.log.Info("clickhouse: writing through replica", "addr", addr, "replica", name)
	return nil
}

// repair fills the index of the replica of st (named name) from its event
// tables when a mark says it missed identities, then records the repair
// on the current replica. With waitCaughtUp the replica must first hold
// every part the others committed (a peer that has just come back); a
// replica the connection has moved to is filled at once, as the one it
// left may be gone with parts not yet fetched; that fill counts as the
// repair only if the replica had caught up, else Maintain fills it again
// once it has.
func (r *Replicas) repair(ctx context.Context, st *Store, name string, waitCaughtUp bool) error {
	var marks []storage.IndexMark
	if err := r.db.Select(ctx, &marks, storage.ReadIndexMarks()); err != nil {
		return fmt.Errorf("read %s: %w", storage.IndexMarks, err)
	}
	var m storage.IndexMark
	for _, x := range marks {
		if x.Replica == name {
			m = x
		}
	}
	if !m.Stale() {
		return nil
	}
	// Parts the replica has not fetched yet are missing from a fill: it is
	// recorded as a repair only when the replica had caught up before it
	// began; else it adds what is there, and a later one completes it.
	caught := caughtUp(ctx, st)
	if waitCaughtUp && caught != nil {
		return caught
	}
	start := time.Now()
	first, last := IndexRange(start, r.maxLateness)
	for mo := first; mo <= last; mo = storage.Month(storage.MonthStart(mo).AddDate(0, 1, 0)) {
		if err := st.db.Exec(ctx, storage.FillIdentities(storage.IdentityTable(mo), mo)); err != nil {
			return fmt.Errorf("refill the identity index of replica %s, month %d: %w", name, mo, err)
		}
	}
	if caught != nil {
		r.log.Info("clickhouse: identity index of a replica filled from the parts it holds; filled again once it has fetched the rest", "replica", name)
		return nil
	}
	if err := r.db.Insert(ctx, storage.IndexMarks, storage.IndexMarkColumns, [][]any{storage.IndexMarkRow(name, true, m.Marked)}); err != nil {
		return fmt.Errorf("record the repair of replica %s: %w", name, err)
	}
	r.log.Info("clickhouse: identity index of a replica filled again from its event tables", "replica", name,
		"took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

var errNotCaughtUp = errors.New("replica still fetching parts")

// caughtUp returns errNotCaughtUp while the replica of st has not read
// and done every entry of its tables' replication logs.
func caughtUp(ctx context.Context, st *Store) error {
	var up []storage.CaughtUpRow
	if err := st.db.Select(ctx, &up, storage.ReplicaCaughtUp()); err != nil {
		return fmt.Errorf("replication state: %w", err)
	}
	if len(up) != 1 || up[0].Tables == 0 || up[0].Behind > 0 {
		return errNotCaughtUp
	}
	return nil
}

// MaintainEvery is how often Maintain looks for stale replicas to repair.
const MaintainEvery = 5 * time.Second

// Maintain repairs, until ctx ends, every replica whose index is stale,
// the one written through included, once it answers and has caught up.
func (r *Replicas) Maintain(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(MaintainEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		current := r.c.Server()
		// The replica written through too: a mark written on another
		// replica while this one was down reaches it only once it has
		// fetched that replica's parts, which may be after the connection
		// moved here (the other replica lost before it could send them).
		r.mu.Lock()
		name, arrived := r.peers[current].name, r.arrived
		r.mu.Unlock()
		if arrived && name != "" {
			if err := r.repair(ctx, r.Store, name, true); err != nil && !errors.Is(err, errNotCaughtUp) && ctx.Err() == nil {
				log.Warn("clickhouse: identity index of the replica written through not repaired yet", "addr", current, "replica", name, "err", err)
			}
		}
		for _, a := range r.c.Addrs() {
			if a == current {
				continue
			}
			st, name, err := r.peer(ctx, a)
			if err != nil {
				continue
			}
			if err := r.repair(ctx, st, name, true); err != nil && !errors.Is(err, errNotCaughtUp) && ctx.Err() == nil {
				log.Warn("clickhouse: replica's identity index not repaired yet", "addr", a, "replica", name, "err", err)
			}
		}
	}
}

// Close closes the connections to the other replicas.
func (r *Replicas) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.peers {
		if p.st != nil {
			p.st.c.Close()
			p.st = nil
		}
	}
}
