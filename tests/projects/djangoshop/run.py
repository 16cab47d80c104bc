"""Steps of the playbook test, each run in its own process: `python run.py STEP`."""

import os
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import authenticate  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from shop.models import Customer, Order  # noqa: E402


def app_data() -> None:
    """The app's life on SQLite: its schema, customers, orders and an admin user."""
    call_command("migrate", verbosity=0)
    start = datetime(2024, 1, 1, 9, 30, tzinfo=UTC)
    for n in range(1, 11):
        customer = Customer.objects.create(name=f"Customer {n}", email=f"c{n}@example.org",
                                           joined=start + timedelta(days=n), vip=n % 3 == 0)
        for k in range(10):
            Order.objects.create(customer=customer, total=Decimal(f"{n}.{k}5"), placed=start + timedelta(hours=k),
                                 note="" if k else "first")
    User.objects.create_superuser("admin", "admin@example.org", "s3cret-pass")


def app_changes() -> None:
    """The app goes on writing in SQLite after the first load: a new customer, a renamed
    one, a deleted order."""
    Customer.objects.create(name="Late", email="late@example.org", joined=datetime(2024, 6, 1, tzinfo=UTC))
    Customer.objects.filter(id=2).update(name="Renamed")
    Order.objects.filter(id=5).delete()


def app_after_cutover() -> None:
    """The app on PostgreSQL after the move: it writes a row and its admin logs in."""
    assert Customer.objects.get(id=2).name == "Renamed" and Customer.objects.get(id=11).name == "Late"
    customer = Customer.objects.create(name="New", email="new@example.org", joined=datetime.now(UTC))
    assert customer.id == 12, customer.id
    assert Order.objects.count() == 100 and Order.objects.filter(customer_id=3).count() == 10
    assert authenticate(username="admin", password="s3cret-pass") is not None
    print("ok")


{"makemigrations": lambda: call_command("makemigrations", "shop", verbosity=0),
 "migrate": lambda: call_command("migrate", verbosity=0),
 "app-data": app_data, "app-changes": app_changes, "app-after-cutover": app_after_cutover}[sys.argv[1]]()
