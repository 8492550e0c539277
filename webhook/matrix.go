package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"lasuite.fr/people/store"
)

// matrixAPI is the Matrix client-server API's prefix.
const matrixAPI = "/_matrix/client/v3"

// sendMatrix makes one attempt of a Matrix delivery, People's steps: the bot joins the room (a
// no-op once it is in), the member's Matrix id is found, then they are invited to the room or
// kicked out of it. Each step is idempotent, and the answers that mean the change is already
// made ("is already in the room" to an invitation, "is not in the room" to a kick) are
// successes, so that a retry after a partial success is harmless.
//
// The requests go where People sent them, through the same client as SCIM (TLS verified, the
// dial-time destination check, no redirect): the homeserver is the room's server name, with
// Tchap's "matrix." in front of it, and the token is MATRIX_BOT_ACCESS_TOKEN for a Tchap room,
// else the webhook's secret.
func (w *Sender) sendMatrix(ctx context.Context, d store.WebhookDelivery) *deliveryFailure {
	room, err := store.ParseMatrixRoom(d.URL)
	if err != nil {
		return failure("invalid Matrix room link", err)
	}
	tchap := isTchap(room.Host())
	token := d.Secret
	if tchap && w.cfg.MatrixBotToken != "" {
		token = w.cfg.MatrixBotToken
	}
	switch {
	case token == "" && d.SecretUnreadable:
		return failure("webhook secret unreadable: SECRET_KEY changed without SECRET_KEY_FALLBACKS", nil)
	case token == "":
		return failure("no Matrix access token: set the webhook's secret (MATRIX_BOT_ACCESS_TOKEN for a Tchap room)", nil)
	case d.Email == "":
		// People answered 500 and dropped the change. No retry can give the user an email: the
		// delivery keeps the one they had at the change.
		f := failure("the user has no email, hence no Matrix id", nil)
		f.final = true
		return f
	}
	home := "https://" + room.Server
	if tchap && !isTchapInternet(room.Host()) {
		home = "https://matrix." + room.Server
	}

	var joined struct {
		RoomID string `json:"room_id"`
	}
	if f := w.matrixPost(ctx, "join", home+matrixAPI+"/join/"+url.PathEscape(room.ID), token, struct{}{}, &joined, nil); f != nil {
		return f
	}
	// An alias names the room for joining only: the invitation and the kick need its id.
	roomID := joined.RoomID
	if !strings.HasPrefix(roomID, "!") {
		if room.ID[0] != '!' {
			return failure("Matrix join answered no room id", nil)
		}
		roomID = room.ID
	}
	userID, f := w.matrixUserID(ctx, d.Email, room, home, token, tchap)
	if f != nil {
		return f
	}
	team := "team " + d.TeamName
	if d.TeamName == "" {
		team = "a deleted team"
	}
	step, done, reason := "invite", "is already in the room", "User added to "+team+" on People"
	if d.Operation == "remove" {
		step, done, reason = "kick", "is not in the room", "User removed from "+team+" on People"
	}
	body := map[string]string{"user_id": userID, "reason": reason}
	already := func(a *matrixAnswer) bool { return a.status/100 == 4 && strings.Contains(a.Error, done) }
	return w.matrixPost(ctx, step, home+matrixAPI+"/rooms/"+url.PathEscape(roomID)+"/"+step, token, body, nil, already)
}

// isTchap reports whether host is one of Tchap's homeservers (tchap.gouv.fr), which People
// reaches under "matrix.<server name>" with MATRIX_BOT_ACCESS_TOKEN. People looked for
// "tchap.gouv.fr" anywhere in the URL, which a link to any other server could hold and get the
// bot's token sent there.
func isTchap(host string) bool {
	host = strings.ToLower(host)
	return host == "tchap.gouv.fr" || strings.HasSuffix(host, ".tchap.gouv.fr")
}

// isTchapInternet reports whether host is Tchap's homeserver for people outside the state
// (i.tchap.gouv.fr), which People reaches under its own name.
func isTchapInternet(host string) bool {
	host = strings.ToLower(host)
	return host == "i.tchap.gouv.fr" || strings.HasSuffix(host, ".i.tchap.gouv.fr")
}

// matrixUserID is the Matrix id of the user whose email is email. People's rule: Tchap's ids
// are the email with "-" for "@", on some homeserver; with MATRIX_BASE_HOME_SERVER set, the user
// directory says which, else the id is taken on the room's server.
//
// Two changes from People. The directory's answer counts only when its id is that very email's
// (People took the first result of a prefix search, which may be someone else). And a
// webhook's own secret goes to its room's homeserver only: its directory is searched rather
// than MATRIX_BASE_HOME_SERVER's, which gets the bot's token only.
func (w *Sender) matrixUserID(ctx context.Context, email string, room store.MatrixRoom, home, token string, tchap bool) (string, *deliveryFailure) {
	local := strings.ReplaceAll(strings.ToLower(email), "@", "-")
	if w.cfg.MatrixBaseHomeServer != "" {
		dir := home
		if tchap && token == w.cfg.MatrixBotToken {
			dir = strings.TrimRight(w.cfg.MatrixBaseHomeServer, "/")
		}
		var found struct {
			Results []struct {
				UserID string `json:"user_id"`
			} `json:"results"`
		}
		if f := w.matrixPost(ctx, "user directory search", dir+matrixAPI+"/user_directory/search", token,
			map[string]string{"search_term": "@" + local}, &found, nil); f != nil {
			return "", f
		}
		for _, r := range found.Results {
			if l, server, ok := strings.Cut(strings.TrimPrefix(r.UserID, "@"), ":"); ok && server != "" &&
				strings.HasPrefix(r.UserID, "@") && strings.EqualFold(l, local) {
				return r.UserID, nil
			}
		}
	}
	return "@" + local + ":" + room.Server, nil
}

// matrixAnswer is a Matrix homeserver's answer: its status and, for an error, the standard
// error body ({"errcode": "M_FORBIDDEN", "error": "…"}, retry_after_ms with M_LIMIT_EXCEEDED).
type matrixAnswer struct {
	status       int
	retryAfter   time.Duration
	ErrCode      string `json:"errcode"`
	Error        string `json:"error"`
	RetryAfterMS int64  `json:"retry_after_ms"`
}

// matrixErrCode is an errcode staff may read: the specification's vocabulary, not free text.
var matrixErrCode = regexp.MustCompile(`^M_[A-Z_]{1,60}$`)

// matrixPost makes one step of a Matrix delivery: POST body as JSON to u with the token. A 200
// is a success, its body decoded into out (nil: ignored); so is an answer done reports as
// meaning the step's change is already made. Anything else is the step's failure, whose class
// names the step, the status and the errcode, never the homeserver's text (it may hold the
// user's Matrix id, hence their email), which the log does not get either.
func (w *Sender) matrixPost(ctx context.Context, step, u, token string, body, out any, done func(*matrixAnswer) bool) *deliveryFailure {
	b, err := json.Marshal(body)
	if err != nil {
		return failure("internal error", err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return failure("invalid Matrix room link", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := w.client.Do(req)
	if err != nil {
		f := w.classify(err)
		f.class = "Matrix " + step + ": " + f.class
		return f
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		f := w.classify(err)
		f.class = "Matrix " + step + ": " + f.class
		return f
	}
	a := &matrixAnswer{status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				return failure("Matrix "+step+": the answer is not the expected JSON", err)
			}
		}
		return nil
	}
	_ = json.Unmarshal(raw, a) // a body that is not Matrix's error leaves its fields empty
	if done != nil && done(a) {
		return nil
	}
	if a.RetryAfterMS > 0 {
		a.retryAfter = time.Duration(a.RetryAfterMS) * time.Millisecond
	} else if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		a.retryAfter = time.Duration(s) * time.Second
	}
	code := ""
	if matrixErrCode.MatchString(a.ErrCode) {
		code = " " + a.ErrCode
	}
	var f *deliveryFailure
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		f = failure(fmt.Sprintf("Matrix %s rate limited: HTTP 429%s", step, code), nil)
		f.retryAfter = a.retryAfter
	case resp.StatusCode/100 == 3:
		f = failure(fmt.Sprintf("Matrix %s failed: HTTP 3xx (%d): redirects are not followed", step, resp.StatusCode), nil)
	default:
		f = failure(fmt.Sprintf("Matrix %s failed: HTTP %dxx (%d)%s", step, resp.StatusCode/100, resp.StatusCode, code), nil)
	}
	f.err = errors.New(f.class)
	return f
}
