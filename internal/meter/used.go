package meter

import "time"

// Used returns the requests of the key id and of its owner this month at
// now as this instance knows them: the month totals the store held when
// they were last read (ReadMonth, ReadOwnerMonth), plus what this instance
// admitted since; 0 for one without quota state. Each is a lower bound of
// what all instances admitted, which a shared counter may be raised to.
func (m *Meter) Used(id, owner string, now time.Time) (key, ownerUsed int64) {
	month := monthIndex(now)
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.tallies[tallyKey{false, id}]; t != nil && t.month == month {
		key = t.used()
	}
	if t := m.tallies[tallyKey{true, owner}]; t != nil && t.month == month {
		ownerUsed = t.used()
	}
	return key, ownerUsed
}
