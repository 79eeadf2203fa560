-- Every per-list table carries its list in its primary key, so that the schema can be
-- distributed by list (docs/design.md, "Beyond one PostgreSQL"): todos were keyed by
-- their id alone. The id stays unique across lists by its own index, as the API
-- promises (an id is never reused in another list); distributed, that index is what
-- has to give way (see the design).
ALTER TABLE todos DROP CONSTRAINT todos_pkey;
ALTER TABLE todos ADD PRIMARY KEY (list_id, id);
CREATE UNIQUE INDEX todos_id ON todos (id);
