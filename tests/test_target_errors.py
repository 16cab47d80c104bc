"""Connection failures a user will hit become one line. Authentication cannot be refused by
the trust-auth test servers, so its translation is checked on the driver's own exception."""

from __future__ import annotations

import asyncpg

from copier.errors import ExitCode
from copier.target import translate_connect_error

DSN = "postgresql://app:hunter2@db.example:6543/prod"


def test_authentication_failure() -> None:
    error = translate_connect_error(asyncpg.InvalidPasswordError('password authentication failed for user "app"'),
                                    DSN)
    assert str(error) == ("PostgreSQL at db.example:6543: password authentication failed "
                          "(hint: check the user and password in the DSN)")
    assert error.exit_code is ExitCode.USAGE


def test_refused_by_hba_and_messages_never_echo_the_password() -> None:
    error = translate_connect_error(
        asyncpg.InvalidAuthorizationSpecificationError("no pg_hba.conf entry for user app with hunter2"), DSN)
    assert str(error).startswith("PostgreSQL at db.example:6543 refused the connection: no pg_hba.conf entry")
    assert "hunter2" not in str(error)


def test_unreachable() -> None:
    error = translate_connect_error(ConnectionRefusedError(111, "Connection refused"), DSN)
    assert str(error) == ("cannot reach PostgreSQL at db.example:6543: Connection refused "
                          "(hint: is the server running and the host/port right?)")
