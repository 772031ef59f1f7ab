package gitlab

import (
	"testing"
	"time"
)

func TestPATExpiry(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		at   string
		days int
		want string
	}{
		{"00:00:01", 1, "2026-12-02"},
		{"12:00:00", 1, "2026-12-02"},
		{"22:59:59", 1, "2026-12-02"},
		{"23:00:01", 1, "2026-12-03"}, // less than an hour left: a day more
		{"23:59:59", 1, "2026-12-03"},
		{"23:30:00", 3, "2026-12-04"},
	} {
		at, _ := time.Parse("15:04:05", c.at)
		now := day.Add(time.Duration(at.Hour())*time.Hour + time.Duration(at.Minute())*time.Minute + time.Duration(at.Second())*time.Second)
		if got := PATExpiry(now, c.days).Format("2006-01-02"); got != c.want {
			t.Errorf("made at %s for %d day(s): expires %s, want %s", c.at, c.days, got, c.want)
		}
	}
	// A zone other than UTC: the day is GitLab's, UTC.
	cet := time.FixedZone("CET", 3600)
	if got := PATExpiry(time.Date(2026, 12, 2, 0, 30, 0, 0, cet), 1).Format("2006-01-02"); got != "2026-12-03" {
		t.Errorf("00:30 CET (23:30 UTC): %s", got)
	}
}
