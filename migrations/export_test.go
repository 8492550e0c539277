package migrations

// UpFrom is Up with the migrations of fsys instead of the embedded ones.
var UpFrom = up
