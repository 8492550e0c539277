-- 0006: a team's accesses by role. A page of teams counts each team's members and owners
-- (store.teamAccessPages); with the role in the index, both counts are an index-only scan
-- instead of a visit to every access's row.
CREATE INDEX team_accesses_team_id_role_idx ON team_accesses (team_id, role);
