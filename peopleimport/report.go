package peopleimport

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Entry is one row the import skipped, changed or noted: one line of the JSON report.
type Entry struct {
	Table  string `json:"table"`  // the target table
	ID     string `json:"id"`     // People's id of the row (for links, both ids)
	Action string `json:"action"` // Skipped, Changed or Noted
	Reason string `json:"reason"`
}

// TableCount is what became of one table's rows.
type TableCount struct {
	Table                   string
	Read, Inserted, Updated int
	Skipped, Changed, Noted int
}

// Report is the outcome of a run.
type Report struct {
	DryRun  bool
	Elapsed time.Duration
	Tables  []*TableCount // in the order the import met them
	Entries []Entry       // in the order the rules found them
}

// count returns the table's counts, added at the end when new.
func (r *Report) count(table string) *TableCount {
	for _, c := range r.Tables {
		if c.Table == table {
			return c
		}
	}
	c := &TableCount{Table: table}
	r.Tables = append(r.Tables, c)
	return c
}

// add records an entry found outside the SQL rules.
func (r *Report) add(table, id, action, reason string) {
	r.Entries = append(r.Entries, Entry{Table: table, ID: id, Action: action, Reason: reason})
}

// Skipped is the number of rows not imported.
func (r *Report) Skipped() int {
	n := 0
	for _, e := range r.Entries {
		if e.Action == Skipped {
			n++
		}
	}
	return n
}

// WriteJSONLines writes one JSON object per entry.
func (r *Report) WriteJSONLines(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, e := range r.Entries {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return nil
}

// WriteSummary writes a table of counts per table and the total of entries per action.
func (r *Report) WriteSummary(w io.Writer) error {
	var b strings.Builder
	if r.DryRun {
		b.WriteString("dry run: nothing was written\n")
	}
	fmt.Fprintf(&b, "%-32s %8s %8s %8s %8s %8s %8s\n", "table", "read", "inserted", "updated", "changed", "skipped", "noted")
	for _, c := range r.Tables {
		fmt.Fprintf(&b, "%-32s %8d %8d %8d %8d %8d %8d\n", c.Table, c.Read, c.Inserted, c.Updated, c.Changed, c.Skipped, c.Noted)
	}
	changed, noted := 0, 0
	for _, e := range r.Entries {
		switch e.Action {
		case Changed:
			changed++
		case Noted:
			noted++
		}
	}
	fmt.Fprintf(&b, "%d skipped, %d changed, %d noted in %.1fs\n", r.Skipped(), changed, noted, r.Elapsed.Seconds())
	_, err := io.WriteString(w, b.String())
	return err
}

// readReport collects the rules' lines, before the commit drops their table, and counts them
// per table.
func (im *importer) readReport(ctx context.Context) error {
	rows, err := im.dst.Query(ctx, "SELECT tbl, id, action, reason FROM import_report ORDER BY seq")
	if err != nil {
		return err
	}
	defer rows.Close()
	sqlEntries := []Entry{}
	for rows.Next() {
		var e Entry
		if err := rows.Scan(&e.Table, &e.ID, &e.Action, &e.Reason); err != nil {
			return err
		}
		sqlEntries = append(sqlEntries, e)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	im.rep.Entries = append(sqlEntries, im.rep.Entries...)
	for _, e := range im.rep.Entries {
		c := im.rep.count(e.Table)
		switch e.Action {
		case Skipped:
			c.Skipped++
		case Changed:
			c.Changed++
		case Noted:
			c.Noted++
		}
	}
	im.rep.Elapsed = time.Since(im.start)
	return nil
}

// replaceIssuer puts the issuer's literal in a statement's {issuer}.
func replaceIssuer(stmt, issuer string) string {
	return strings.ReplaceAll(stmt, issuerParam, quote(issuer))
}
