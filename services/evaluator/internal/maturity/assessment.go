package maturity

import "github.com/assoliment/assoliment/services/evaluator/apiv1"

// MaxLevel is the highest maturity level.
const MaxLevel = 5

var levelNames = [MaxLevel + 1]string{"sense_dades", "puntual", "collaboracio", "estrategia", "gestionat", "optimitzat"}

// LevelName returns the ASCII name of a level: "sense_dades" for 0, then
// "puntual", "collaboracio", "estrategia", "gestionat" and "optimitzat".
// It returns "" for a level out of range.
func LevelName(level int) string {
	if level < 0 || level > MaxLevel {
		return ""
	}
	return levelNames[level]
}

// The verdicts are the API's types, so what the rules produce is exactly
// what the API serves and its clients decode.
type (
	// Assessment is the verdict on one municipality at one instant.
	Assessment = apiv1.Assessment
	// Criterion is the verdict on one criterion.
	Criterion = apiv1.Criterion
	// SLAResult is the state of one SLA in force at T.
	SLAResult = apiv1.SLA
	// ServiceResult is the state of one catalogued service.
	ServiceResult = apiv1.Service
)
