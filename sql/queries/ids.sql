-- Named queries about ids that deleted lists and todos leave taken (sql/0010_limits.sql).

-- name: retired
-- A list id: taken for good once any list or todo had it and was deleted.
SELECT 1 AS taken FROM retired_ids WHERE id = %(id)s

-- name: retired_elsewhere
-- A todo id: taken when a deleted todo of another list, or a deleted list, had it.
SELECT 1 AS taken FROM retired_ids WHERE id = %(id)s AND list_id <> %(list)s
