"""The README's first example runs as written: its app block on a real worker, its client block against it."""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path
from typing import Any

from conftest import Services, new_taskhub

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example(services: Services, tmp_path: Path, start_worker: Any, monkeypatch: Any) -> None:
    app_block, client_block = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[:2]
    (tmp_path / "readme_example.py").write_text(app_block)
    hub = new_taskhub("readme")
    for key, value in {"TASKHUB": hub, "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url}.items():
        monkeypatch.setenv(key, value)
    start_worker(hub, extra_env={"PYTHONPATH": str(tmp_path)}, module="readme_example:app")

    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("readme_example", None)
    namespace: dict[str, Any] = {}
    exec("from readme_example import *", namespace)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(client_block, namespace)
    assert printed.getvalue().strip() == "sent: Hello world"
