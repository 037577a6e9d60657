"""Dashboard cookies signed out before they expired (a cookie is valid on its own signature otherwise)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..models import SignOutRow
from . import dialect


def sign_out(session: Session, taskhub: str, token_digest: str, expires_at: datetime) -> None:
    """Refuse the cookie whose digest is `token_digest` until `expires_at`; forget those past theirs."""
    now = dialect.of(session).current_time(session)
    session.execute(delete(SignOutRow).where(SignOutRow.taskhub == taskhub, SignOutRow.expires_at < now))
    insert = dialect.of(session).insert(SignOutRow.__table__)
    values = {"taskhub": taskhub, "token_digest": token_digest, "expires_at": expires_at}
    session.execute(insert.values(**values).on_conflict_do_nothing(index_elements=["taskhub", "token_digest"]))


def is_signed_out(session: Session, taskhub: str, token_digest: str) -> bool:
    found = session.scalar(
        select(SignOutRow.token_digest).where(SignOutRow.taskhub == taskhub, SignOutRow.token_digest == token_digest)
    )
    return found is not None
