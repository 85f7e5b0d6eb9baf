"""The SDK's ``SessionStore`` over SQL: transcripts live in ``transcript_entries``, so any instance can resume
any session (``ClaudeAgentOptions(session_store=SqlSessionStore(factory), resume=session_id)``).

Contract (see ``claude_agent_sdk.types.SessionStore``), and where this store departs from the SDK's reference:

- ``append(key, entries)`` stores entries in call order; an entry's ``uuid`` is its idempotency key (a retried
  batch is a no-op), entries without one are always appended. Each call is one transaction.
- ``load(key)`` returns the entries of ``(session_id, subpath)`` in order, or None if nothing was stored.
  **Keyed by session id, not by project key.** The SDK derives ``project_key`` from the cwd; a store keyed
  strictly by it cannot resume a session whose cwd changed ("No conversation found"), and entries written after
  such a resume land under the new key. Session ids are server-chosen UUIDs (unique across tenants), so the
  project key is recorded on each row for reference but never used to find a transcript. The SDK's reference
  contracts "project_key isolation" and "delete leaves another project's same-id session alone" therefore do
  not hold here, on purpose.
- ``delete(key)``: without ``subpath`` removes the session's every transcript (main and subagents); with one,
  only that transcript.
- ``list_subkeys(key)``: the session's subagent subpaths (so a resume materialises subagent transcripts too).
- ``list_sessions(project_key)``: session ids with a main transcript written under that project key, with the
  epoch-ms time of their latest write. ``list_session_summaries`` is not implemented (there is no summary table;
  the SDK falls back to ``list_sessions`` + ``load``).

Failures propagate: the SDK retries a failed ``append`` (3 attempts) and then reports a ``mirror_error`` system
message, while the CLI's local transcript stays intact.
"""

from __future__ import annotations

from typing import cast

from claude_agent_sdk import SessionStore, fork_session_via_store
from claude_agent_sdk.types import SessionKey, SessionListSubkeysKey, SessionStoreEntry, SessionStoreListEntry

from claude_agent_api.kit.database import SessionFactory, unit_of_work
from claude_agent_api.sessions.transcripts import MAIN, TranscriptRepository


def _subpath(key: SessionKey) -> str:
    return key.get("subpath") or MAIN


class SqlSessionStore(SessionStore):
    """A ``SessionStore`` whose every call runs in its own unit of work on ``session_factory``."""

    # Not implemented: keep the protocol's own marker, which the SDK recognises as "absent" (declared here so
    # the class is not abstract to type checkers).
    list_session_summaries = SessionStore.list_session_summaries

    def __init__(self, session_factory: SessionFactory) -> None:
        self.session_factory = session_factory

    async def append(self, key: SessionKey, entries: list[SessionStoreEntry]) -> None:
        if not entries:
            return
        async with unit_of_work(self.session_factory) as db:
            await TranscriptRepository(db).append(key["session_id"], _subpath(key), key["project_key"], entries)

    async def load(self, key: SessionKey) -> list[SessionStoreEntry] | None:
        async with unit_of_work(self.session_factory) as db:
            entries = await TranscriptRepository(db).load(key["session_id"], _subpath(key))
        return cast("list[SessionStoreEntry] | None", entries)

    async def list_sessions(self, project_key: str) -> list[SessionStoreListEntry]:
        async with unit_of_work(self.session_factory) as db:
            sessions = await TranscriptRepository(db).list_sessions(project_key)
        return [{"session_id": sid, "mtime": int(mtime.timestamp() * 1000)} for sid, mtime in sessions]

    async def delete(self, key: SessionKey) -> None:
        async with unit_of_work(self.session_factory) as db:
            await TranscriptRepository(db).delete(key["session_id"], key.get("subpath") or None)

    async def list_subkeys(self, key: SessionListSubkeysKey) -> list[str]:
        async with unit_of_work(self.session_factory) as db:
            return await TranscriptRepository(db).list_subpaths(key["session_id"])


async def fork_transcript(
    store: SqlSessionStore, session_id: str, *, directory: str, up_to_message_id: str | None, title: str | None
) -> str:
    """Copy a session's transcript (up to a message, inclusive) into a new session; returns the new id.

    Raises ``LookupError`` when the session has no transcript, ``ValueError`` for an unknown message.
    """
    try:
        result = await fork_session_via_store(
            store, session_id, directory=directory, up_to_message_id=up_to_message_id, title=title
        )
    except FileNotFoundError as exc:
        raise LookupError(str(exc)) from exc
    return result.session_id
