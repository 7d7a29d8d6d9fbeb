// Package keyring holds the gateway's tokens in force: who each token
// speaks for, its rate limiter, and the reload of the tokens file when it
// changes. Limiters exist only for configured tokens, so no request, however
// hostile, makes the gateway remember anything new.
package keyring

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/time/rate"

	"github.com/assoliment/assoliment/services/gateway/tokens"
)

// Principal is the holder of one token: the publisher its events must name,
// the municipalities they may be about, and its own rate limiter.
type Principal struct {
	Publisher      string
	Municipalities []string // sorted
	Limiter        *rate.Limiter
	hash           [sha256.Size]byte
}

// Allows reports whether the token may send an event of publisher about
// municipality.
func (p *Principal) Allows(publisher, municipality string) bool {
	if publisher != p.Publisher {
		return false
	}
	_, found := slices.BinarySearch(p.Municipalities, municipality)
	return found
}

// Keyring is the set of tokens in force. Safe for concurrent use.
type Keyring struct {
	limit rate.Limit
	burst int

	mu         sync.RWMutex
	principals []*Principal
}

// New returns an empty keyring whose tokens get limit events per second
// with burst.
func New(limit float64, burst int) *Keyring {
	return &Keyring{limit: rate.Limit(limit), burst: burst}
}

// Replace puts entries in force. A token still present keeps its limiter,
// so reloading the file does not reset anyone's rate.
func (k *Keyring) Replace(entries []tokens.Entry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	old := map[[sha256.Size]byte]*Principal{}
	for _, p := range k.principals {
		old[p.hash] = p
	}
	next := make([]*Principal, 0, len(entries))
	for _, e := range entries {
		var h [sha256.Size]byte
		if b, err := hex.DecodeString(e.SHA256); err != nil || copy(h[:], b) != sha256.Size {
			continue // tokens.Parse only returns valid hashes
		}
		lim := rate.NewLimiter(k.limit, k.burst)
		if p, ok := old[h]; ok {
			lim = p.Limiter
		}
		munis := slices.Clone(e.Municipalities)
		slices.Sort(munis)
		next = append(next, &Principal{Publisher: e.Publisher, Municipalities: munis, Limiter: lim, hash: h})
	}
	k.principals = next
}

// Authenticate returns the holder of token, or false. The token's hash is
// compared with every configured hash in constant time, without stopping
// at a match, so the time taken tells nothing about the tokens.
func (k *Keyring) Authenticate(token string) (*Principal, bool) {
	h := sha256.Sum256([]byte(token))
	k.mu.RLock()
	defer k.mu.RUnlock()
	var found *Principal
	for _, p := range k.principals {
		if subtle.ConstantTimeCompare(h[:], p.hash[:]) == 1 {
			found = p
		}
	}
	return found, found != nil
}

// Len is the number of tokens in force.
func (k *Keyring) Len() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.principals)
}

// Publishers lists the publishers of the tokens in force (with repeats).
func (k *Keyring) Publishers() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]string, len(k.principals))
	for i, p := range k.principals {
		out[i] = p.Publisher
	}
	return out
}

// Loader re-reads the tokens file into a keyring.
type Loader struct {
	Path    string
	Keyring *Keyring
	Log     *slog.Logger
	// OnReload is told the outcome of every reload (nil error: in force).
	OnReload func(err error)

	mu     sync.Mutex
	loaded bool
	last   [sha256.Size]byte // hash of the content in force
}

// Load reads the file and puts its tokens in force. On error the tokens in
// force stay.
func (l *Loader) Load() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, err := os.ReadFile(l.Path)
	if err == nil {
		sum := sha256.Sum256(b)
		if l.loaded && sum == l.last {
			l.Log.Debug("tokens file unchanged", "file", l.Path)
			return nil
		}
		var entries []tokens.Entry
		if entries, err = tokens.Parse(b); err == nil {
			l.Keyring.Replace(entries)
			l.last, l.loaded = sum, true
			l.Log.Info("tokens file loaded", "file", l.Path, "tokens", len(entries))
		}
	}
	if err != nil {
		l.Log.Error("tokens file not loaded; the tokens in force stay", "file", l.Path, "err", err)
	}
	if l.OnReload != nil {
		l.OnReload(err)
	}
	return err
}

// Watch reloads the file when it changes and when reload receives, until
// ctx ends. It watches the file's directory, not the file, so that an
// editor's save by rename, or a mounted configuration swapped by symbolic
// link, is seen; changes are gathered for settle before reading, so a file
// being written is read once complete. When the directory cannot be
// watched (no inotify instance left, say), the file is read again on
// reload only, and a warning says so.
func (l *Loader) Watch(ctx context.Context, reload <-chan os.Signal, settle time.Duration) {
	dir, base := filepath.Dir(l.Path), filepath.Base(l.Path)
	var events <-chan fsnotify.Event
	var errs <-chan error
	w, err := fsnotify.NewWatcher()
	if err == nil {
		defer w.Close()
		err = w.Add(dir)
	}
	if err != nil {
		l.Log.Warn("cannot watch the tokens file's folder; the file is read again only on SIGHUP", "dir", dir, "err", err)
	} else {
		events, errs = w.Events, w.Errors
	}
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
			l.Log.Info("reload requested by signal")
			_ = l.Load()
		case ev := <-events:
			// Kubernetes swaps a "..data" link; everything else names the file.
			if filepath.Base(ev.Name) == base || filepath.Base(ev.Name) == "..data" {
				timer = time.After(settle)
			}
		case err := <-errs:
			l.Log.Warn("watching the tokens file", "dir", dir, "err", err)
		case <-timer:
			timer = nil
			_ = l.Load()
		}
	}
}
