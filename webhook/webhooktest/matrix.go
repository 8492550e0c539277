package webhooktest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
)

// MatrixRequest is one request a MatrixHomeserver got, its path decoded.
type MatrixRequest struct {
	Host, Path, Authorization string
	Body                      map[string]any
}

// MatrixHomeserver is an in-process fake of the part of a Matrix homeserver's client-server API
// that Matrix webhooks use, over TLS on 127.0.0.1, answering as Synapse does: POST
// /_matrix/client/v3/join/{roomIdOrAlias}, /user_directory/search, /rooms/{roomId}/invite and
// /rooms/{roomId}/kick, with Authorization: Bearer <Token> and Matrix's error bodies
// ({"errcode": "M_FORBIDDEN", "error": "@u:s is already in the room."}). Its rooms keep each
// user's membership, so a test sees what the sender changed and a retry meets what an earlier
// attempt did.
type MatrixHomeserver struct {
	Server *httptest.Server
	Token  string // the only access token it accepts; the bot's
	Bot    string // the bot's user id
	mu     sync.Mutex
	rooms  map[string]map[string]string // room id → user id → membership (invite, join, leave, ban)
	alias  map[string]string            // alias → room id
	users  []string                     // the user directory
	got    []MatrixRequest
	fault  func(n int, path string) (status int, body string, ok bool)
}

// StartMatrixHomeserver starts a homeserver accepting token, with a certificate (Roots) valid
// for 127.0.0.1 and the DNS names given; it stops when the test ends.
func StartMatrixHomeserver(tb testing.TB, token string, names ...string) *MatrixHomeserver {
	tb.Helper()
	m := &MatrixHomeserver{Token: token, Bot: "@people-bot:127.0.0.1", rooms: map[string]map[string]string{}, alias: map[string]string{}}
	m.Server = httptest.NewUnstartedServer(http.HandlerFunc(m.serve))
	m.Server.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(tb, names)}}
	m.Server.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes the tests make fail
	m.Server.StartTLS()
	tb.Cleanup(m.Server.Close)
	return m
}

// selfSigned is a certificate authority's certificate that is also a server's, for names and
// 127.0.0.1.
func selfSigned(tb testing.TB, names []string) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "matrix test homeserver"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, DNSNames: names, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Addr is the homeserver's host and port, the server name of the rooms it serves by address.
func (m *MatrixHomeserver) Addr() string { return m.Server.Listener.Addr().String() }

// Roots trusts the homeserver's certificate.
func (m *MatrixHomeserver) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(m.Server.Certificate())
	return p
}

// AddRoom creates a room, with an alias unless it is "", to which the bot is invited (or not:
// the room is invite-only and the bot cannot join).
func (m *MatrixHomeserver) AddRoom(id, alias string, botInvited bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rooms[id] = map[string]string{}
	if botInvited {
		m.rooms[id][m.Bot] = "invite"
	}
	if alias != "" {
		m.alias[alias] = id
	}
}

// SetMembership sets a user's membership of a room, as if they had acted themselves.
func (m *MatrixHomeserver) SetMembership(room, user, membership string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rooms[room][user] = membership
}

// Membership is a user's membership of a room: invite, join, leave, ban, or "" for none.
func (m *MatrixHomeserver) Membership(room, user string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rooms[room][user]
}

// AddDirectoryUser makes the user directory know a user id.
func (m *MatrixHomeserver) AddDirectoryUser(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users = append(m.users, id)
}

// SetFault makes f decide, before anything else, the answer to each later request: n counts
// requests from 1, path is decoded; ok false lets the homeserver answer.
func (m *MatrixHomeserver) SetFault(f func(n int, path string) (status int, body string, ok bool)) {
	m.mu.Lock()
	m.fault = f
	m.mu.Unlock()
}

// Requests are the requests received so far, in order.
func (m *MatrixHomeserver) Requests() []MatrixRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]MatrixRequest(nil), m.got...)
}

// Paths are the paths of the requests received so far, in order.
func (m *MatrixHomeserver) Paths() []string {
	var out []string
	for _, r := range m.Requests() {
		out = append(out, r.Path)
	}
	return out
}

func matrixError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"errcode": code, "error": msg})
}

func (m *MatrixHomeserver) serve(w http.ResponseWriter, r *http.Request) {
	var segs []string
	for _, s := range strings.Split(r.URL.EscapedPath(), "/") {
		u, err := url.PathUnescape(s)
		if err != nil {
			matrixError(w, http.StatusBadRequest, "M_UNRECOGNIZED", "bad path")
			return
		}
		segs = append(segs, u)
	}
	path := strings.Join(segs, "/")
	var body map[string]any
	b, _ := io.ReadAll(r.Body)
	json.Unmarshal(b, &body)

	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, MatrixRequest{Host: r.Host, Path: path, Authorization: r.Header.Get("Authorization"), Body: body})
	if m.fault != nil {
		if status, msg, ok := m.fault(len(m.got), path); ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, msg)
			return
		}
	}
	switch auth := r.Header.Get("Authorization"); {
	case r.Method != http.MethodPost:
		matrixError(w, http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "Unrecognized request")
		return
	case auth == "":
		matrixError(w, http.StatusUnauthorized, "M_MISSING_TOKEN", "Missing access token")
		return
	case auth != "Bearer "+m.Token:
		matrixError(w, http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "Invalid access token passed.")
		return
	}
	const api = "/_matrix/client/v3/"
	rest, ok := strings.CutPrefix(path, api)
	if !ok {
		matrixError(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
		return
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 2 && parts[0] == "join":
		id := parts[1]
		if a, ok := m.alias[id]; ok {
			id = a
		}
		members, ok := m.rooms[id]
		switch {
		case !ok:
			matrixError(w, http.StatusNotFound, "M_NOT_FOUND", "No known servers")
		case members[m.Bot] != "invite" && members[m.Bot] != "join":
			matrixError(w, http.StatusForbidden, "M_FORBIDDEN", "You are not invited to this room.")
		default:
			members[m.Bot] = "join"
			json.NewEncoder(w).Encode(map[string]string{"room_id": id})
		}
	case rest == "user_directory/search":
		term, _ := body["search_term"].(string)
		results := []map[string]string{}
		for _, u := range m.users {
			if term != "" && strings.Contains(strings.ToLower(u), strings.ToLower(term)) {
				results = append(results, map[string]string{"user_id": u, "display_name": u})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"limited": false, "results": results})
	case len(parts) == 3 && parts[0] == "rooms" && (parts[2] == "invite" || parts[2] == "kick"):
		members, ok := m.rooms[parts[1]]
		target, _ := body["user_id"].(string)
		switch {
		case !ok || members[m.Bot] != "join":
			matrixError(w, http.StatusForbidden, "M_FORBIDDEN", fmt.Sprintf("User %s not in room %s", m.Bot, parts[1]))
		case target == "":
			matrixError(w, http.StatusBadRequest, "M_MISSING_PARAM", "Missing user_id")
		case parts[2] == "invite" && members[target] == "join":
			matrixError(w, http.StatusForbidden, "M_FORBIDDEN", target+" is already in the room.")
		case parts[2] == "invite" && members[target] == "ban":
			matrixError(w, http.StatusForbidden, "M_FORBIDDEN", target+" is banned from the room")
		case parts[2] == "invite":
			members[target] = "invite"
			io.WriteString(w, "{}")
		case members[target] != "join" && members[target] != "invite":
			matrixError(w, http.StatusForbidden, "M_FORBIDDEN", "The target user is not in the room")
		default:
			members[target] = "leave"
			io.WriteString(w, "{}")
		}
	default:
		matrixError(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
	}
}

// MatrixHook creates a Matrix webhook for team linking to url, deleted (with its pending
// deliveries) when the test ends.
func MatrixHook(tb testing.TB, s *store.Store, team uuid.UUID, url, secret string) *store.TeamWebhook {
	tb.Helper()
	w, err := s.CreateTeamWebhook(tb.Context(), store.NewTeamWebhook{TeamID: team, URL: url, Secret: secret, Protocol: store.WebhookProtocolMatrix})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.DeleteTeamWebhook(context.Background(), w.ID) })
	return w
}
