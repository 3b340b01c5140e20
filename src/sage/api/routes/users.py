from __future__ import annotations

from fastapi import APIRouter

from sage.api.deps import CurrentUser
from sage.api.schemas import UserOut
from sage.store.user_tables import User

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=UserOut)
async def me(user: CurrentUser) -> User:
    # FastAPI validates the response into `UserOut` (from attributes) once; no second model here.
    return user
