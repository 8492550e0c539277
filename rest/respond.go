package rest

import (
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"lasuite.fr/people/store"
	"lasuite.fr/people/wire"
)

// People's messages, which partners may compare.
const (
	msgForbidden = "You do not have permission to perform this action."
	msgRequired  = "This field is required."
	msgNull      = "This field may not be null."
	msgInternal  = "A server error occurred."
	// A duplicate invitation, as Django words a unique_together violation.
	msgInvitationExists = "Team invitation with this Email address and Team already exists."
)

// writeJSON answers v as JSON, in People's media type: application/json, or SCIM's.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil { // our own types: not reached
		status, b = http.StatusInternalServerError, wire.DetailBody(msgInternal)
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(b)
}

// respond writes a one-message error in the shape of r's path (wire.Respond): People's
// {"detail": …}, or SCIM's error object.
func respond(w http.ResponseWriter, r *http.Request, status int, e wire.Error) {
	wire.Respond(w, r, status, e)
}

// respondError writes a one-message error with no retry.
func respondError(w http.ResponseWriter, r *http.Request, status int, message string) {
	respond(w, r, status, wire.Error{Code: codes[status], Message: message})
}

// codes are the wire codes of the statuses answered here; only GraphQL's shape shows them,
// but every layer speaks the same vocabulary.
var codes = map[int]string{
	http.StatusUnauthorized: wire.CodeUnauthenticated, http.StatusForbidden: wire.CodeForbidden,
	http.StatusNotFound: "NOT_FOUND", http.StatusMethodNotAllowed: wire.CodeMethodNotAllowed,
	http.StatusBadRequest: "BAD_REQUEST", http.StatusUnsupportedMediaType: "UNSUPPORTED_MEDIA_TYPE",
	http.StatusInternalServerError: wire.CodeInternal, http.StatusTooManyRequests: wire.CodeRateLimited,
	http.StatusRequestEntityTooLarge: "REQUEST_TOO_LARGE",
}

// fieldErrors is DRF's validation error body: the messages of each input field, "__all__"
// for the object as a whole.
type fieldErrors map[string][]string

func writeFieldErrors(w http.ResponseWriter, fe fieldErrors) {
	writeJSON(w, http.StatusBadRequest, "application/json", fe)
}

// storeError answers a store error as People answers the same failure: 404 with notFound for
// what the caller cannot see, 403 for what their role forbids, 400 with DRF's field errors for
// bad input and broken uniqueness, 429 for a store limit, 503 with Retry-After when the
// database is out of reach. Anything else is logged and answered 500 with a fixed message:
// never SQL, a token or a stack.
func (h *Handler) storeError(w http.ResponseWriter, r *http.Request, err error, notFound string) {
	var e *store.Error
	errors.As(err, &e)
	switch store.KindOf(err) {
	case store.KindNotFound:
		respondError(w, r, http.StatusNotFound, notFound)
	case store.KindForbidden:
		respondError(w, r, http.StatusForbidden, msgForbidden)
	case store.KindInvalid, store.KindConflict:
		if store.Breaks(err, "invitations_email_team_id_key") {
			writeFieldErrors(w, fieldErrors{"__all__": {msgInvitationExists}})
			return
		}
		writeFieldErrors(w, fieldErrors{cmp.Or(fieldNames[e.Field], e.Field, "__all__"): {e.Message}})
	case store.KindLimited:
		respond(w, r, http.StatusTooManyRequests, wire.Error{Code: wire.CodeRateLimited, Message: e.Message})
	case store.KindUnavailable:
		h.opts.Log.WarnContext(r.Context(), "partner request found the database unavailable", "err", err)
		respond(w, r, http.StatusServiceUnavailable, wire.Unavailable(""))
	default:
		h.opts.Log.ErrorContext(r.Context(), "partner request failed", "path", r.Pattern, "err", err)
		respondError(w, r, http.StatusInternalServerError, msgInternal)
	}
}

// fieldNames are People's names of the store's input fields that differ.
var fieldNames = map[string]string{"teamId": "team"}

// maxBody bounds a request body: a team or an invitation is a few hundred bytes.
const maxBody = 64 << 10

// readBody reads the request's fields as DRF's parsers do: a JSON object, or a form (URL-
// encoded or multipart), whose values are strings. It answers the client itself and returns
// false when the body cannot be read.
func readBody(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	ct := r.Header.Get("Content-Type")
	media, _, _ := mime.ParseMediaType(ct)
	switch {
	case media == "application/json" || strings.HasSuffix(media, "+json"):
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, tooLarge(w, r, err)
		}
		if len(strings.TrimSpace(string(b))) == 0 {
			return map[string]any{}, true
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			respondError(w, r, http.StatusBadRequest, "JSON parse error - the body is not valid JSON.")
			return nil, false
		}
		obj, ok := v.(map[string]any)
		if !ok {
			writeFieldErrors(w, fieldErrors{"non_field_errors": {"Invalid data. Expected a dictionary, but got " + jsonType(v) + "."}})
			return nil, false
		}
		return obj, true
	case media == "application/x-www-form-urlencoded" || media == "multipart/form-data":
		var err error
		if media == "multipart/form-data" {
			err = r.ParseMultipartForm(maxBody)
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			return nil, tooLarge(w, r, err)
		}
		obj := make(map[string]any, len(r.PostForm))
		for k, vs := range r.PostForm {
			obj[k] = vs[len(vs)-1] // DRF's QueryDict gives the last value
		}
		return obj, true
	case ct == "":
		return map[string]any{}, true // DRF reads no body as empty data
	}
	respondError(w, r, http.StatusUnsupportedMediaType, `Unsupported media type "`+ct+`" in request.`)
	return nil, false
}

// tooLarge answers a body that could not be read: 413 past maxBody, else 400.
func tooLarge(w http.ResponseWriter, r *http.Request, err error) bool {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		respondError(w, r, http.StatusRequestEntityTooLarge, "Request body too large.")
	} else {
		respondError(w, r, http.StatusBadRequest, "Malformed request body.")
	}
	return false
}

// jsonType names a decoded JSON value as Python names the type DRF got.
func jsonType(v any) string {
	switch v.(type) {
	case []any:
		return "list"
	case string:
		return "str"
	case float64:
		return "float"
	case bool:
		return "bool"
	}
	return "NoneType"
}

// stringField reads a DRF CharField: present reports whether the field was sent. Numbers are
// taken as their text, as DRF does.
func stringField(body map[string]any, name string, fe fieldErrors) (value string, present bool) {
	v, present := body[name]
	if !present {
		return "", false
	}
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case nil:
		fe[name] = []string{msgNull}
	default:
		fe[name] = []string{"Not a valid string."}
	}
	return "", false
}

// boolField reads a DRF BooleanField, which takes JSON booleans and the words and numbers
// forms send.
func boolField(body map[string]any, name string, fe fieldErrors) (value, present bool) {
	v, present := body[name]
	if !present {
		return false, false
	}
	switch x := v.(type) {
	case bool:
		return x, true
	case float64:
		if x == 1 || x == 0 {
			return x == 1, true
		}
	case string:
		switch x {
		case "t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "1":
			return true, true
		case "f", "F", "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "0":
			return false, true
		}
	case nil:
		fe[name] = []string{msgNull}
		return false, false
	}
	fe[name] = []string{"Must be a valid boolean."}
	return false, false
}

func itoa(n int) string { return strconv.Itoa(n) }

// drfTime is a time as DRF renders it: UTC, microseconds (left out when zero), then Z.
func drfTime(t time.Time) string { return isoTime(t, "Z") }

// isoTime is Python's datetime.isoformat of t in UTC, then zone: microseconds are written
// only when there are some, as Python does.
func isoTime(t time.Time, zone string) string {
	t = t.UTC().Truncate(time.Microsecond)
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02T15:04:05") + zone
	}
	return t.Format("2006-01-02T15:04:05.000000") + zone
}
