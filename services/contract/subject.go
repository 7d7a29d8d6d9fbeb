package contract

import (
	"fmt"
	"regexp"
	"strings"
)

// SubjectPrefix is the first token of every inbound subject.
const SubjectPrefix = "smartcity"

// AssessmentPrefix is the first token of level-change subjects.
const AssessmentPrefix = "assessment"

var (
	slugRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	tokenRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
)

// ValidSlug reports whether s is a valid municipality or publisher id.
func ValidSlug(s string) bool { return slugRE.MatchString(s) }

// ValidToken reports whether s is a valid service, KPI, incident or area id.
func ValidToken(s string) bool { return tokenRE.MatchString(s) }

// Subject builds smartcity.<municipality>.<publisher>.<kind>.
func Subject(municipality, publisher string, kind Kind) string {
	return SubjectPrefix + "." + municipality + "." + publisher + "." + string(kind)
}

// AssessmentSubject builds assessment.<municipality>.
func AssessmentSubject(municipality string) string {
	return AssessmentPrefix + "." + municipality
}

// SubjectParts are the tokens of an inbound subject.
type SubjectParts struct {
	Municipality string
	Publisher    string
	Kind         Kind
}

// ParseSubject splits an inbound subject and checks each token.
func ParseSubject(subject string) (SubjectParts, error) {
	t := strings.Split(subject, ".")
	if len(t) != 4 || t[0] != SubjectPrefix {
		return SubjectParts{}, fmt.Errorf("subject %q is not smartcity.<municipality>.<publisher>.<kind>", subject)
	}
	p := SubjectParts{Municipality: t[1], Publisher: t[2], Kind: Kind(t[3])}
	if !ValidSlug(p.Municipality) {
		return p, fmt.Errorf("subject municipality %q does not match %s", p.Municipality, slugRE)
	}
	if !ValidSlug(p.Publisher) {
		return p, fmt.Errorf("subject publisher %q does not match %s", p.Publisher, slugRE)
	}
	switch p.Kind {
	case KindCatalog, KindMeasurement, KindIncident:
	default:
		return p, fmt.Errorf("subject kind %q is not catalog, measurement or incident", p.Kind)
	}
	return p, nil
}
