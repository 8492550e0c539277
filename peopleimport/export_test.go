package peopleimport

// The contact data checks, for the test that compares them with the database's.
var (
	ValidData = validData
	CleanData = cleanData
)
