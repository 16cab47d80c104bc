"""A small Django project for the playbook test: the same models on SQLite (where the app
grew up) and on PostgreSQL (where `manage.py migrate` makes the schema). Configured by
environment variables: SHOP_DB=sqlite|postgres, SHOP_SQLITE, SHOP_PG_DSN, SHOP_PG_SCHEMA."""

import os
from urllib.parse import parse_qsl, unquote, urlsplit

SECRET_KEY = "not-secret: a test project"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                  "django.contrib.sessions", "django.contrib.messages", "shop"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]


def _postgres() -> dict[str, object]:
    parts = urlsplit(os.environ["SHOP_PG_DSN"])
    query = dict(parse_qsl(parts.query))
    return {"ENGINE": "django.db.backends.postgresql", "NAME": parts.path.lstrip("/"),
            "USER": unquote(parts.username or "postgres"), "PASSWORD": unquote(parts.password or ""),
            "HOST": query.get("host") or parts.hostname or "", "PORT": str(parts.port or ""),
            "OPTIONS": {"options": f"-c search_path={os.environ['SHOP_PG_SCHEMA']}"}}


DATABASES = {"default": _postgres() if os.environ.get("SHOP_DB") == "postgres"
             else {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("SHOP_SQLITE", "shop.db")}}
