"""Two real server processes sharing PostgreSQL, Redis and the workspace root, each with its own data directory
(and so its own, initially empty, CLI config directories) — as two hosts behind a load balancer would be."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support import services
from tests.support.processes import server_process


@dataclass
class Cluster:
    a: str
    b: str
    admin_key: str
    database_url: str
    root: Path

    def data_dir(self, name: str) -> Path:
        return self.root / name

    def client(self, base: str, key: str, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("timeout", 60)
        return httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, **kwargs)

    async def new_key(self, name: str = "tenant") -> str:
        async with self.client(self.a, self.admin_key) as admin:
            response = await admin.post("/api/v1/keys", json={"name": name})
            response.raise_for_status()
            return str(response.json()["key"])


@contextmanager
def cluster(root: Path, model_base_url: str, **extra_env: str) -> Iterator[Cluster]:
    services.require("postgres")
    services.require("redis")
    database_url = services.create_postgres_database("caa_cluster")
    admin_key = "caa_cluster_admin_" + uuid.uuid4().hex
    shared = {
        "DATABASE_URL": database_url,
        "REDIS_URL": services.REDIS_URL,
        "CAA_NAMESPACE": "c" + uuid.uuid4().hex[:10],
        "CAA_WORKSPACE_ROOT": str(root / "shared-workspaces"),
        "CAA_BOOTSTRAP_ADMIN_KEY": admin_key,
        "ANTHROPIC_BASE_URL": model_base_url,
        "ANTHROPIC_API_KEY": "test-key",
        "CAA_AGENT_MAX_RETRIES": "0",
        "CAA_RATE_LIMIT_ENABLED": "false",
        "CAA_LOG_LEVEL": "info",
        **extra_env,
    }
    try:
        with ExitStack() as stack:
            bases = []
            for name in ("a", "b"):
                (root / name).mkdir(parents=True, exist_ok=True)
                env = {**shared, "CAA_DATA_DIR": str(root / name), "CAA_INSTANCE_ID": f"instance-{name}"}
                bases.append(stack.enter_context(server_process(env, root, log_path=root / f"{name}.log")))
            yield Cluster(a=bases[0], b=bases[1], admin_key=admin_key, database_url=database_url, root=root)
    finally:
        services.drop_postgres_database(database_url)
