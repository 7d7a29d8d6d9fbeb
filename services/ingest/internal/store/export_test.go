package store

import "github.com/assoliment/assoliment/services/storage"

// Audit passes every statement of s through wrap, so that tests can check
// what its ClickHouse user needs.
func (s *Store) Audit(wrap func(storage.Engine) storage.Engine) *Store {
	s.db = wrap(s.db)
	return s
}
