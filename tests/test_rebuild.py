"""Which existing tables have their indexes and constraints set aside for the load, and the
SQL that drops and makes them again (pure: no server)."""

from __future__ import annotations

import pytest

from copier.rebuild import Definition, DefinitionKind, SetAside, TableFacts, decide, dropped

PK = Definition("app", "users", "users_pkey", DefinitionKind.PRIMARY_KEY, "PRIMARY KEY (id)")
EMAIL = Definition("app", "users", "users_email_idx", DefinitionKind.INDEX,
                   "CREATE INDEX users_email_idx ON app.users USING btree (email)")
FK = Definition("app", "posts", "posts_user_fk", DefinitionKind.FOREIGN_KEY,
                "FOREIGN KEY (user_id) REFERENCES app.users(id) DEFERRABLE INITIALLY DEFERRED")
CHECK = Definition("app", "users", "age_positive", DefinitionKind.CHECK, "CHECK ((age >= 0))")


def facts(*definitions: Definition, blockers: tuple[str, ...] = (), rows: int = 0) -> TableFacts:
    return TableFacts("users", definitions, blockers, rows)


def test_an_empty_table_is_set_aside_whatever_if_exists_says_but_upsert() -> None:
    for if_exists in ("fail", "truncate", "append"):
        assert decide(facts(PK, EMAIL), if_exists=if_exists, load_rows=10) == SetAside("users", (PK, EMAIL))
    assert decide(facts(PK), if_exists="upsert", load_rows=10).kept_because == \
        "--if-exists upsert finds rows through its primary key"


def test_rows_already_there_keep_the_indexes_unless_few_against_the_load() -> None:
    assert decide(facts(PK, rows=25), if_exists="append", load_rows=100).definitions == (PK,)
    kept = decide(facts(PK, rows=26), if_exists="append", load_rows=100)
    assert kept.definitions == ()
    assert kept.kept_because == "it holds 26 rows, many against the 100 to load: its indexes are updated as rows arrive"
    # Truncated by the run: its rows do not count.
    assert decide(facts(PK, rows=10_000), if_exists="truncate", load_rows=1).definitions == (PK,)


def test_a_blocker_keeps_the_table_on_todays_path_and_says_why() -> None:
    decision = decide(facts(PK, blockers=("constraint no_overlap is an exclusion constraint", "it is partitioned")),
                      if_exists="truncate", load_rows=10)
    assert decision == SetAside("users", (), "constraint no_overlap is an exclusion constraint; it is partitioned")
    assert decide(facts(), if_exists="truncate", load_rows=10).kept_because == "it has no index or constraint"


def test_sql_names_everything_quoted_and_qualified() -> None:
    odd = Definition("My App", "Users", "Users PK", DefinitionKind.PRIMARY_KEY, "PRIMARY KEY (id)")
    assert odd.create_sql() == 'ALTER TABLE "My App"."Users" ADD CONSTRAINT "Users PK" PRIMARY KEY (id)'
    assert odd.drop_sql() == 'ALTER TABLE "My App"."Users" DROP CONSTRAINT "Users PK"'
    assert EMAIL.create_sql() == "CREATE INDEX users_email_idx ON app.users USING btree (email)"
    assert EMAIL.drop_sql() == 'DROP INDEX "app"."users_email_idx"'


def test_a_foreign_key_is_added_not_valid_then_validated_unless_the_user_left_it_not_valid() -> None:
    assert FK.create_sql(not_valid=True) == (
        "ALTER TABLE \"app\".\"posts\" ADD CONSTRAINT \"posts_user_fk\" FOREIGN KEY (user_id) REFERENCES app.users(id) "
        "DEFERRABLE INITIALLY DEFERRED NOT VALID")
    assert FK.validate_sql() == 'ALTER TABLE "app"."posts" VALIDATE CONSTRAINT "posts_user_fk"'
    left = Definition("app", "posts", "loose", DefinitionKind.FOREIGN_KEY,
                      "FOREIGN KEY (user_id) REFERENCES app.users(id) NOT VALID", valid=False)
    assert left.create_sql(not_valid=True).count("NOT VALID") == 1
    # A check too: its failing rows are taken out between the two (existing.load_then_restore).
    assert CHECK.create_sql(not_valid=True) == ('ALTER TABLE "app"."users" ADD CONSTRAINT "age_positive" '
                                                "CHECK ((age >= 0)) NOT VALID")
    assert "NOT VALID" not in PK.create_sql(not_valid=True)


@pytest.mark.parametrize(("kind", "body", "columns"), [
    (DefinitionKind.PRIMARY_KEY, "PRIMARY KEY (id)", ("id",)),
    (DefinitionKind.UNIQUE, "UNIQUE (user_id, title)", ("user_id", "title")),
    (DefinitionKind.UNIQUE, 'UNIQUE ("Odd ""name", b) INCLUDE (c) DEFERRABLE INITIALLY DEFERRED', ('Odd "name', "b")),
    (DefinitionKind.INDEX, "CREATE UNIQUE INDEX u ON app.t USING btree (a, b)", ("a", "b")),
    # What the set queries do not model: the table is loaded again with them in place.
    (DefinitionKind.UNIQUE, "UNIQUE NULLS NOT DISTINCT (a)", None),
    (DefinitionKind.INDEX, "CREATE UNIQUE INDEX u ON app.t USING btree (lower(a))", None),
    (DefinitionKind.INDEX, "CREATE UNIQUE INDEX u ON app.t USING btree (a) WHERE (a > 0)", None),
    (DefinitionKind.INDEX, "CREATE UNIQUE INDEX u ON app.t USING btree (a DESC)", None),
    (DefinitionKind.INDEX, "CREATE UNIQUE INDEX u ON app.t USING btree (a text_pattern_ops)", None),
    (DefinitionKind.INDEX, 'CREATE UNIQUE INDEX u ON app.t USING btree (a COLLATE "C")', None),
    (DefinitionKind.INDEX, "CREATE INDEX u ON app.t USING btree (a)", None),
    (DefinitionKind.CHECK, "CHECK ((a > 0))", None),
])
def test_the_columns_a_unique_definition_makes_unique(kind: DefinitionKind, body: str,
                                                     columns: tuple[str, ...] | None) -> None:
    assert Definition("app", "t", "u", kind, body).unique_columns == columns


def test_dropped_once_foreign_keys_first_indexes_last() -> None:
    users = SetAside("users", (PK, EMAIL, CHECK, FK))
    posts = SetAside("posts", (FK,))  # the key between two set-aside tables belongs to both
    assert dropped([users, posts, SetAside("tags", kept_because="x")]) == [FK, CHECK, EMAIL, PK]


def test_a_foreign_key_names_the_table_it_references_as_postgresql_prints_it() -> None:
    assert FK.refers_to("app", "users")
    assert not FK.refers_to("app", "user")  # a name's start is not the name
    assert not FK.refers_to("public", "users")
    quoted = Definition("My App", "Posts", "posts_fk", DefinitionKind.FOREIGN_KEY,
                        'FOREIGN KEY ("UserId") REFERENCES "My App"."Users"("Id")')
    assert quoted.refers_to("My App", "Users")
    assert not quoted.refers_to("my app", "users")
    reserved = Definition("app", "posts", "posts_fk", DefinitionKind.FOREIGN_KEY,
                          'FOREIGN KEY (o) REFERENCES app."order"(id)')
    assert reserved.refers_to("app", "order")
    assert not PK.refers_to("app", "users")  # not a foreign key: it references nothing
