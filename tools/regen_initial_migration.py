"""Regenerate the initial migration (0001) from ``store/schema.py``.

Only for the pre-release period, while no database outside development holds the schema:
after the first release, schema changes get a new Alembic revision instead
(``alembic revision --autogenerate`` via ``marba_dagster.store.migrate.alembic_config``).
"""

from __future__ import annotations

import re
import tempfile

from alembic import command

from marba_dagster.store.migrate import MIGRATIONS_DIR, alembic_config

TARGET = MIGRATIONS_DIR / "versions" / "0001_initial_marba_schema.py"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        TARGET.unlink(missing_ok=True)
        cfg = alembic_config(f"sqlite:///{tmp}/gen.db")
        command.revision(cfg, message="initial MARBA schema", autogenerate=True, rev_id="0001")
    text = TARGET.read_text()
    # Autogenerate renders SQLite's spelling of defaults; make them portable.
    text = text.replace("sa.text('(CURRENT_TIMESTAMP)')", "sa.func.now()")
    text = text.replace("server_default=sa.text('1')", "server_default=sa.true()")
    text = text.replace("server_default=sa.text('0')", "server_default=sa.false()")
    text = text.replace("astext_type=Text()", "astext_type=sa.Text()")
    text = text.replace("UTCDateTime(timezone=True)", "UTCDateTime()")
    text = re.sub(r"\n\s*# ### (commands auto generated|end Alembic commands).*", "", text)
    text = re.sub(r"Create Date: .*", "Create Date: 2026-11-28", text)
    TARGET.write_text(text)
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
