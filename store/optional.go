package store

// Optional values as readers see them: a column stored as NULL (read as "" through nullzero)
// is absent, not empty. Each returns a pointer into its row, so that reading one allocates
// nothing; callers must not write through it.

// NameOrNil is the user's name, nil when unknown.
func (u *User) NameOrNil() *string { return nonEmpty(&u.Name) }

// EmailOrNil is the user's email, nil when unknown.
func (u *User) EmailOrNil() *string { return nonEmpty(&u.Email) }

// ShortNameOrNil is the contact's short name, nil when it has none.
func (c *Contact) ShortNameOrNil() *string { return nonEmpty(&c.ShortName) }

// LastErrorOrNil is why the webhook's last attempt failed, nil after a success.
func (w *TeamWebhook) LastErrorOrNil() *string { return nonEmpty(&w.LastError) }

// JoinedUser is the access's user, when the query that read the access joined it (see
// TeamAccessView.User).
func (a *TeamAccessView) JoinedUser() *User { return a.User }

func nonEmpty(s *string) *string {
	if *s == "" {
		return nil
	}
	return s
}
