-- 0010: the team tree. A team may have a parent team of its own organization. The columns
-- People's partners read are kept as People's treebeard MP_Node stores them, so that paths
-- imported from People keep their meaning:
--   path      5-character steps in base 62 (0-9A-Za-z), the root's first: a child of 00001 is
--             0000100001; unique, collation "C" so that the steps sort as numbers and a prefix
--             search (path LIKE 'p%') uses the index;
--   depth     1 for a root, up to 80 levels (varchar(400));
--   numchild  the number of direct children.
-- parent_id is ours (People finds the parent from the path); the database keeps the four
-- consistent, whoever writes: the application, an importer or psql.
--
-- Concurrency: every change of a tree's shape (a child created, a team moved or deleted) takes
-- a transaction-level advisory lock on the team's organization (team_tree_lock) before reading
-- the paths it depends on, so two moves in one organization run one after the other and the
-- second sees the first's result: "A under B" and "B under A" at once cannot both succeed.
-- Parents are of the same organization, so one lock covers a whole tree. The store takes the
-- lock before its UPDATE (store.lockTeamTree), so that the row locks come after it in every
-- transaction; the triggers take it again (advisory locks nest) for any other writer, who may
-- then meet a deadlock error but never an inconsistent tree. Under REPEATABLE READ or
-- SERIALIZABLE, where the lock would not refresh the snapshot, reading the parent FOR KEY SHARE
-- fails with a serialization error instead of reading a stale path. Roots take their step from
-- a sequence and need no lock.

CREATE FUNCTION team_path_step(n bigint) RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
	alphabet constant text := '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
	step text := '';
BEGIN
	IF n < 1 OR n >= 916132832 THEN -- 62^5
		RAISE EXCEPTION 'team path step % out of range', n USING ERRCODE = 'numeric_value_out_of_range';
	END IF;
	FOR i IN 1..5 LOOP
		step := substr(alphabet, (n % 62)::int + 1, 1) || step;
		n := n / 62;
	END LOOP;
	RETURN step;
END $$;

CREATE FUNCTION team_path_number(step text) RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
	alphabet constant text := '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
	n bigint := 0;
BEGIN
	FOR i IN 1..length(step) LOOP
		n := n * 62 + strpos(alphabet, substr(step, i, 1)) - 1;
	END LOOP;
	RETURN n;
END $$;

-- team_tree_lock takes the lock of the tree(s) of an organization (NULL: teams without one).
CREATE FUNCTION team_tree_lock(org uuid) RETURNS void LANGUAGE sql AS $$
	SELECT pg_advisory_xact_lock(hashtextextended('people.team_tree:' || coalesce(org::text, ''), 0))
$$;

CREATE SEQUENCE teams_root_path_seq;

ALTER TABLE teams
	-- NO ACTION: a team that still has children cannot be deleted alone; a subtree deleted by
	-- one statement (path LIKE 'p%') passes, the check running at the statement's end.
	ADD COLUMN parent_id uuid CONSTRAINT teams_parent_id_fkey REFERENCES teams (id),
	ADD COLUMN path varchar(400) COLLATE "C",
	ADD COLUMN depth integer,
	ADD COLUMN numchild integer NOT NULL DEFAULT 0;

-- Teams so far are roots, numbered in the order they were created.
UPDATE teams t SET path = team_path_step(r.n), depth = 1
FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM teams) r WHERE r.id = t.id;
SELECT setval('teams_root_path_seq', greatest((SELECT count(*) FROM teams), 1), (SELECT count(*) FROM teams) > 0);

ALTER TABLE teams
	ALTER COLUMN path SET NOT NULL,
	ALTER COLUMN depth SET NOT NULL,
	ADD CONSTRAINT teams_path_key UNIQUE (path),
	ADD CONSTRAINT teams_path_check CHECK (path ~ '^([0-9A-Za-z]{5})+$' AND length(path) = 5 * depth),
	ADD CONSTRAINT teams_depth_check CHECK (depth BETWEEN 1 AND 80),
	ADD CONSTRAINT teams_numchild_check CHECK (numchild >= 0),
	ADD CONSTRAINT teams_parent_depth_check CHECK ((parent_id IS NULL) = (depth = 1)),
	ADD CONSTRAINT teams_parent_not_self_check CHECK (parent_id <> id);
CREATE INDEX teams_parent_id_idx ON teams (parent_id);

-- place_team sets a new or moved team's path and depth from its parent, and refuses what would
-- break the tree. An explicit path on INSERT (an import from People) is kept when it is a
-- child step of the parent's path (or one step for a root).
CREATE FUNCTION place_team() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	parent teams%ROWTYPE;
	last text;
	below integer := 0;
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.parent_id IS NOT DISTINCT FROM OLD.parent_id THEN
		-- Only place_team's own cascades (moved_team, count_team_children) change these.
		IF pg_trigger_depth() < 2 AND (NEW.path IS DISTINCT FROM OLD.path OR NEW.depth IS DISTINCT FROM OLD.depth
			OR NEW.numchild IS DISTINCT FROM OLD.numchild) THEN
			RAISE EXCEPTION 'a team''s path, depth and numchild follow its parent: change parent_id'
				USING ERRCODE = 'check_violation', CONSTRAINT = 'teams_tree_check';
		END IF;
		IF NEW.organization_id IS DISTINCT FROM OLD.organization_id AND (NEW.parent_id IS NOT NULL OR NEW.numchild > 0) THEN
			RAISE EXCEPTION 'a team in a tree cannot change organization'
				USING ERRCODE = 'check_violation', CONSTRAINT = 'teams_parent_organization_check';
		END IF;
		RETURN NEW;
	END IF;
	IF TG_OP = 'INSERT' THEN
		NEW.numchild := 0;
		IF NEW.parent_id IS NULL THEN
			IF NEW.path IS NULL THEN
				NEW.path := team_path_step(nextval('teams_root_path_seq'));
			ELSIF NEW.path ~ '^[0-9A-Za-z]{5}$' THEN
				-- An imported root: later roots are numbered after it.
				PERFORM setval('teams_root_path_seq', team_path_number(NEW.path))
				WHERE team_path_number(NEW.path) > (SELECT last_value FROM teams_root_path_seq);
			END IF;
			NEW.depth := length(NEW.path) / 5;
			RETURN NEW;
		END IF;
	END IF;
	IF TG_OP = 'UPDATE' AND NEW.organization_id IS DISTINCT FROM OLD.organization_id THEN
		RAISE EXCEPTION 'a team in a tree cannot change organization'
			USING ERRCODE = 'check_violation', CONSTRAINT = 'teams_parent_organization_check';
	END IF;
	PERFORM team_tree_lock(NEW.organization_id);
	IF NEW.parent_id IS NULL THEN -- moved to the roots
		NEW.path := team_path_step(nextval('teams_root_path_seq'));
		NEW.depth := 1;
		RETURN NEW;
	END IF;
	SELECT * INTO parent FROM teams WHERE id = NEW.parent_id FOR KEY SHARE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'parent team % not found', NEW.parent_id
			USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'teams_parent_exists_check';
	END IF;
	IF parent.organization_id IS DISTINCT FROM NEW.organization_id THEN
		RAISE EXCEPTION 'a team''s parent must be of the same organization'
			USING ERRCODE = 'check_violation', CONSTRAINT = 'teams_parent_organization_check';
	END IF;
	IF TG_OP = 'UPDATE' AND left(parent.path, length(OLD.path)) = OLD.path THEN
		RAISE EXCEPTION 'a team cannot be moved under itself or one of its descendants'
			USING ERRCODE = 'check_violation', CONSTRAINT = 'teams_parent_cycle_check';
	END IF;
	IF TG_OP = 'UPDATE' THEN -- the levels the subtree brings under the team
		SELECT max(depth) - OLD.depth INTO below FROM teams WHERE path LIKE OLD.path || '%';
	END IF;
	IF parent.depth + 1 + below > 80 THEN
		RAISE EXCEPTION 'a team tree may have at most 80 levels'
			USING ERRCODE = 'check_violation', CONSTRAINT = 'teams_depth_check';
	END IF;
	IF TG_OP = 'INSERT' AND NEW.path IS NOT NULL THEN
		IF NEW.path !~ ('^' || parent.path || '[0-9A-Za-z]{5}$') THEN
			RAISE EXCEPTION 'path % is not a child step of its parent''s path %', NEW.path, parent.path
				USING ERRCODE = 'check_violation', CONSTRAINT = 'teams_path_check';
		END IF;
	ELSE
		SELECT max(path) INTO last FROM teams WHERE path LIKE parent.path || '_____' AND id <> NEW.id;
		NEW.path := parent.path || team_path_step(coalesce(team_path_number(right(last, 5)), 0) + 1);
	END IF;
	NEW.depth := parent.depth + 1;
	RETURN NEW;
END $$;
CREATE TRIGGER teams_place BEFORE INSERT OR UPDATE OF parent_id, path, depth, numchild, organization_id ON teams
	FOR EACH ROW EXECUTE FUNCTION place_team();

-- moved_team follows a move: the subtree's paths and depths under the team's new path, and
-- the old and new parents' numchild.
CREATE FUNCTION moved_team() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE teams SET path = NEW.path || substr(path, length(OLD.path) + 1), depth = depth - OLD.depth + NEW.depth
	WHERE path LIKE OLD.path || '_%';
	UPDATE teams SET numchild = numchild - 1 WHERE id = OLD.parent_id;
	UPDATE teams SET numchild = numchild + 1 WHERE id = NEW.parent_id;
	RETURN NULL;
END $$;
CREATE TRIGGER teams_moved AFTER UPDATE OF parent_id ON teams
	FOR EACH ROW WHEN (OLD.parent_id IS DISTINCT FROM NEW.parent_id) EXECUTE FUNCTION moved_team();

-- count_team_children keeps the parent's numchild on insert and delete. A parent deleted by the
-- same statement (a subtree) is already gone: its update changes nothing.
CREATE FUNCTION count_team_children() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		UPDATE teams SET numchild = numchild + 1 WHERE id = NEW.parent_id;
	ELSE
		UPDATE teams SET numchild = numchild - 1 WHERE id = OLD.parent_id;
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER teams_count_children_insert AFTER INSERT ON teams
	FOR EACH ROW WHEN (NEW.parent_id IS NOT NULL) EXECUTE FUNCTION count_team_children();
CREATE TRIGGER teams_count_children_delete AFTER DELETE ON teams
	FOR EACH ROW WHEN (OLD.parent_id IS NOT NULL) EXECUTE FUNCTION count_team_children();

-- A deletion changes the tree's shape too: it waits for moves in progress in the organization.
-- Triggers fire in the order of their names: this one before teams_delete_accesses_first, so
-- that the lock comes before the accesses' row locks, as in the store.
CREATE FUNCTION lock_deleted_team_tree() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM team_tree_lock(OLD.organization_id);
	RETURN OLD;
END $$;
CREATE TRIGGER teams_delete_0_lock_tree BEFORE DELETE ON teams
	FOR EACH ROW EXECUTE FUNCTION lock_deleted_team_tree();
