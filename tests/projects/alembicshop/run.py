"""Steps of the playbook test with SQLAlchemy and Alembic, each in its own process:
`python run.py STEP`. Configured like the Django project: SHOP_DB=sqlite|postgres,
SHOP_SQLITE, SHOP_PG_DSN, SHOP_PG_SCHEMA."""

import os
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from models import Category, Product  # noqa: E402


def engine() -> Engine:
    if os.environ.get("SHOP_DB") != "postgres":
        return create_engine(f"sqlite:///{os.environ['SHOP_SQLITE']}")
    url = make_url(os.environ["SHOP_PG_DSN"]).set(drivername="postgresql+psycopg")
    return create_engine(url, connect_args={"options": f"-c search_path={os.environ['SHOP_PG_SCHEMA']}"})


def upgrade() -> None:
    """alembic upgrade head."""
    config = Config()
    config.set_main_option("script_location", str(HERE / "migrations"))
    with engine().begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def app_data() -> None:
    upgrade()
    start = datetime(2024, 1, 1, 9, 30)
    with Session(engine()) as session, session.begin():
        session.add_all([Category(id=2, name="books"), Category(id=3, name="tools")])
        session.add_all([Product(category_id=1 + n % 3, name=f"Product {n}", price=Decimal(f"{n}.99"),
                                 created=start + timedelta(hours=n), active=n % 4 != 0) for n in range(1, 51)])


def app_after_cutover() -> None:
    with Session(engine()) as session, session.begin():
        product = Product(category_id=2, name="New", price=Decimal("1.50"), created=datetime(2025, 1, 1))
        session.add(product)
        session.flush()
        assert product.id == 51, product.id
        assert session.scalar(select(func.count()).select_from(Product).where(Product.category_id == 2)) == 18
    print("ok")


{"upgrade": upgrade, "app-data": app_data, "app-after-cutover": app_after_cutover}[sys.argv[1]]()
